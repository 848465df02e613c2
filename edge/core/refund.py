"""Refund and void quotes (MicroPython subset).

A refund reverses a sale pro rata per unit: for the per-line figures X of the sale
(gross, net, paid, points earned, points redeemed, cashback) the units refunded so far
take ``X * after // qty - X * before // qty``, where ``before`` and ``after`` are the
units of that line refunded before and after this refund.  The parts telescope:
refunding every unit, in one go or in several, returns exactly X, never more.  Discount
and wallet parts are derived (gross - net, net - paid), so every refund satisfies
``refunded = gross - discount - wallet`` exactly, like a sale.  A refund cannot itself
be refunded.

When the member has already spent what the refund takes back (points earned by the sale
and redeemed since, cashback credited and spent), :func:`settle_member` applies the rules
bundle's ``refund_clawback`` policy: ``deduct`` (the default) takes back what the member
still holds and withholds the rest from the money refunded, at ``point_value_rials`` per
point and Rial for Rial of cashback; ``overdraft`` takes it all back and the member's
balance goes below zero (recovered from later earnings).  Terminal and head office book
exactly the figures the refund record carries, so both show the same balance.
"""

from edge.core.errors import RefundError
from edge.core.text import group, num_fa, rials_en, rials_fa

_COLUMNS = ("gross", "discount", "net", "wallet", "paid", "points", "redeemed", "cashback")
_TELESCOPED = ("gross", "net", "paid", "points", "redeemed", "cashback")


def _fail(field, en, fa):
    return RefundError(field, en, fa)


def _units(spec, sale_lines, field):
    # {line index: units} from [{"line": i, "qty": n}, ...]
    out = {}
    if spec is None:
        return out
    if type(spec) is not list:
        raise _fail(field, "must be a list of {line, qty}", "فهرست اقلام مرجوعی نامعتبر است.")
    for e in spec:
        if type(e) is not dict or type(e.get("line")) is not int or type(e.get("qty")) is not int:
            raise _fail(
                field,
                'each entry must be {"line": int, "qty": int}',
                "فهرست اقلام مرجوعی نامعتبر است.",
            )
        i = e["line"]
        q = e["qty"]
        if i < 0 or i >= len(sale_lines):
            raise _fail(field, "line %d is not in the sale" % (i,), "این قلم در فاکتور نیست.")
        if q < 1:
            raise _fail(field, "qty must be at least 1", "تعداد مرجوعی باید حداقل ۱ باشد.")
        out[i] = out.get(i, 0) + q
    return out


def refund(sale, request, prior=None, kind="refund"):
    """Quote the reversal of (part of) ``sale``, a quote returned by ``engine.quote``.

    ``request`` is ``{"lines": [{"line": i, "qty": n}, ...]}`` or ``{"all": true}``
    (every unit not yet refunded); ``prior`` lists units refunded earlier in the
    same form.  ``kind`` is "refund" or "void" (a void takes back all that remains).
    """
    if kind != "refund" and kind != "void":
        raise _fail("kind", "must be refund or void", "نوع مرجوعی نامعتبر است.")
    if type(sale) is not dict or type(sale.get("lines")) is not list:
        raise _fail("sale", "is not a sale quote", "فاکتور فروش نامعتبر است.")
    if sale.get("type") != "sale":
        raise _fail(
            "sale",
            "a %s cannot be refunded; only sales can" % (sale.get("type"),),
            "مرجوعی یا ابطال را نمی‌توان دوباره مرجوع کرد.",
        )
    lines = sale["lines"]
    for ln in lines:
        if type(ln) is not dict or type(ln.get("qty")) is not int or ln["qty"] < 1:
            raise _fail("sale.lines", "a line without a valid qty", "فاکتور فروش نامعتبر است.")
        for c in _COLUMNS:
            if type(ln.get(c)) is not int:
                raise _fail("sale.lines", "a line without %s" % (c,), "فاکتور فروش نامعتبر است.")
    before = _units(prior, lines, "prior")
    for i in before:
        if before[i] > lines[i]["qty"]:
            raise _fail(
                "prior",
                "line %d: %d units refunded of %d sold" % (i, before[i], lines[i]["qty"]),
                "سابقه مرجوعی نامعتبر است.",
            )
    if type(request) is not dict:
        raise _fail("request", "must be an object", "درخواست مرجوعی نامعتبر است.")
    if kind == "void" or request.get("all") is True:
        want = {}
        for i in range(len(lines)):
            left = lines[i]["qty"] - before.get(i, 0)
            if left > 0:
                want[i] = left
    else:
        want = _units(request.get("lines"), lines, "request.lines")
    if not want:
        raise _fail("request", "nothing left to refund", "چیزی برای مرجوع کردن باقی نمانده است.")
    out_lines = []
    totals = {}
    for c in _COLUMNS:
        totals[c] = 0
    for i in sorted(want.keys()):
        ln = lines[i]
        qty = ln["qty"]
        b = before.get(i, 0)
        a = b + want[i]
        if a > qty:
            raise _fail(
                "request.lines",
                "line %d: only %d of %d units left to refund" % (i, qty - b, qty),
                "تعداد مرجوعی بیشتر از تعداد خریداری‌شده است.",
            )
        part = {"line": i, "sku": ln.get("sku"), "qty": want[i]}
        for c in _TELESCOPED:
            x = ln[c]
            part[c] = x * a // qty - x * b // qty
        part["discount"] = part["gross"] - part["net"]
        part["wallet"] = part["net"] - part["paid"]
        for c in _COLUMNS:
            totals[c] += part[c]
        out_lines.append(part)
    result = {
        "type": kind,
        "lines": out_lines,
        "refund_amount": totals["paid"],
        "wallet_returned": totals["wallet"],
        "points_reversed": totals["points"],
        "points_returned": totals["redeemed"],
        "wallet_reversed": totals["cashback"],
        "gross": totals["gross"],
        "discount": totals["discount"],
        "rules_version": sale.get("rules_version"),
    }
    result["fa"], result["en"] = _explain(result)
    return result


def settle_member(r, points, wallet, policy):
    """Adjust refund quote ``r`` (from :func:`refund`) to what the member holds now:
    ``points`` and ``wallet`` are their balances before this refund.  Adds
    ``points_forgiven``, ``wallet_forgiven`` (what is not taken back) and ``withheld``
    (Rials kept from the refund for them) and lowers ``points_reversed``,
    ``wallet_reversed`` and ``refund_amount`` accordingly.  Returns ``r``."""
    r["points_forgiven"] = 0
    r["wallet_forgiven"] = 0
    r["withheld"] = 0
    if policy.get("refund_clawback", "deduct") != "deduct":
        return r
    value = policy.get("point_value_rials", 0)
    p_after = points - r["points_reversed"] + r["points_returned"]
    w_after = wallet + r["wallet_returned"] - r["wallet_reversed"]
    short_w = -w_after if w_after < 0 else 0
    if short_w > r["wallet_reversed"]:
        short_w = r["wallet_reversed"]
    short_p = -p_after if p_after < 0 else 0
    if short_p > r["points_reversed"]:
        short_p = r["points_reversed"]
    if value <= 0:
        short_p = 0  # points without a money value stay taken back (an overdraft)
    money = r["refund_amount"]
    # cashback first (Rial for Rial), then points, never more than the refund holds
    if short_w > money:
        short_w = money
    money -= short_w
    if short_p * value > money:
        short_p = money // value if value > 0 else 0
    withheld = short_w + short_p * value
    r["points_forgiven"] = short_p
    r["wallet_forgiven"] = short_w
    r["withheld"] = withheld
    r["points_reversed"] -= short_p
    r["wallet_reversed"] -= short_w
    r["refund_amount"] -= withheld
    if withheld:
        r["fa"], r["en"] = _explain(r)
    return r


def _explain(r):
    void = r["type"] == "void"
    fa = "%s: %s بازگشت وجه" % ("ابطال" if void else "مرجوعی", rials_fa(r["refund_amount"]))
    en = "%s: %s back" % ("Void" if void else "Refund", rials_en(r["refund_amount"]))
    if r["wallet_returned"]:
        fa += "، %s به کیف پول" % (rials_fa(r["wallet_returned"]),)
        en += ", %s to the wallet" % (rials_en(r["wallet_returned"]),)
    if r["points_reversed"]:
        fa += "، %s امتیاز کسر" % (num_fa(r["points_reversed"]),)
        en += ", %s points taken back" % (group(r["points_reversed"]),)
    if r["points_returned"]:
        fa += "، %s امتیاز بازگشت" % (num_fa(r["points_returned"]),)
        en += ", %s points returned" % (group(r["points_returned"]),)
    if r["wallet_reversed"]:
        fa += "، %s از کیف پول کسر" % (rials_fa(r["wallet_reversed"]),)
        en += ", %s cashback taken back" % (rials_en(r["wallet_reversed"]),)
    if r.get("withheld"):
        fa += "، %s بابت امتیاز و اعتبار خرج‌شده کسر از مبلغ" % (rials_fa(r["withheld"]),)
        en += ", %s withheld for points and credit already spent" % (rials_en(r["withheld"]),)
    return (fa, en)
