"""Baskets and member snapshots as the engine reads them (MicroPython subset).

Both arrive as plain dicts from the POS, the ledger cache or a JSON file; they are
validated here, field by field, into small objects with integer columns.  Bad input
raises :class:`~edge.core.errors.InputError` naming the field.
"""

from edge.core import jalali
from edge.core.dates import days_from_civil, split_ymd
from edge.core.errors import DateError, InputError
from edge.core.ruleset import MAX_AMOUNT
from edge.core.text import fa_digits, num_fa

MAX_LINES = 500
MAX_QTY = 100000
MAX_COUPONS = 20  # codes presented in one basket


def _bad(field, en, fa=None):
    """An InputError whose Persian text is written for the cashier: ``fa`` says what is
    wrong, prefixed with where (the line of the basket, the field) in Persian."""
    return InputError(field, en, _where_fa(field) + (fa or "مقدار نامعتبر است."))


# what a cashier calls the fields of a basket line
_FIELDS_FA = {
    "sku": "کد کالا",
    "category": "گروه کالا",
    "qty": "تعداد",
    "unit_price": "قیمت واحد",
    "total": "جمع سبد",
    "coupons": "کدهای تخفیف",
    "redeem_points": "امتیاز درخواستی",
    "use_wallet": "مبلغ کیف پول",
    "store": "کد فروشگاه",
}


def _where_fa(field):
    """'basket.lines[2].qty' -> 'ردیف ۳ سبد، تعداد: ' (the line as the cashier counts)."""
    parts = field.split(".")
    out = ""
    if len(parts) > 1 and parts[1][:6] == "lines[":
        n = parts[1][6:-1]
        if n.isdigit():
            out = "ردیف %s سبد" % (fa_digits(str(int(n) + 1)),)
    name = parts[-1]
    if name in _FIELDS_FA:
        out = out + "، " + _FIELDS_FA[name] if out else _FIELDS_FA[name]
    return out + ": " if out else ""


def _text(v, field, maxlen=64):
    if type(v) is not str or not v or len(v) > maxlen:
        raise _bad(
            field,
            "must be text of 1..%d characters" % (maxlen,),
            "باید متنی از ۱ تا %s نویسه باشد." % (fa_digits(str(maxlen)),),
        )
    if min(v) < " " or "\x7f" in v:
        raise _bad(field, "contains a control character", "نویسه نامجاز دارد.")
    # a lone surrogate ("\udc80", which JSON allows) cannot be encoded into the sale
    # record; refuse it here, before the bank is asked to charge (MicroPython's
    # strings are always UTF-8, so this never raises there)
    try:
        v.encode("utf-8")
    except UnicodeError:
        raise _bad(field, "is not valid Unicode text", "متن معتبری نیست.") from None
    return v


def _text_field(obj, name, where, required=True, maxlen=64):
    v = obj.get(name)
    if v is None and not required:
        return None
    return _text(v, where + "." + name, maxlen)


def _int_field(obj, name, where, lo, hi, default=None):
    v = obj.get(name)
    if v is None and default is not None:
        return default
    if type(v) is not int:
        raise _bad(where + "." + name, "must be an integer, got %r" % (v,), "باید عدد صحیح باشد.")
    if v < lo or v > hi:
        raise _bad(
            where + "." + name,
            "%d is outside %d..%d" % (v, lo, hi),
            "باید بین %s و %s باشد." % (num_fa(lo), num_fa(hi)),
        )
    return v


def _request(basket, name):
    # redeem_points / use_wallet: absent, a non-negative integer, or "max".
    v = basket.get(name)
    if v is None:
        return 0
    if v == "max":
        return MAX_AMOUNT
    if type(v) is not int or v < 0:
        raise _bad(
            "basket." + name,
            'must be a non-negative integer or "max"',
            "باید عددی صفر یا بیشتر یا «max» باشد.",
        )
    return v


class Basket:
    def __init__(self, basket):
        if type(basket) is not dict:
            raise _bad("basket", "must be an object", "سبد خرید نامعتبر است.")
        lines = basket.get("lines")
        if type(lines) is not list or not lines:
            raise _bad("basket.lines", "a basket needs at least one line", "سبد خرید خالی است.")
        if len(lines) > MAX_LINES:
            raise _bad(
                "basket.lines",
                "more than %d lines" % (MAX_LINES,),
                "سبد خرید بیش از %s ردیف دارد." % (fa_digits(str(MAX_LINES)),),
            )
        self.skus = []
        self.cats = []
        self.qty = []
        self.price = []
        self.gross = []
        total = 0
        for i in range(len(lines)):
            ln = lines[i]
            if type(ln) is not dict:
                raise _bad("basket.lines[%d]" % i, "must be an object", "ردیف نامعتبر است.")
            sku = ln.get("sku")
            cat = ln.get("category", "")
            q = ln.get("qty")
            p = ln.get("unit_price")
            # the common, valid line is checked inline (this loop is on the till's
            # critical path); anything unusual goes through the field checkers,
            # which say exactly what is wrong
            if not (
                type(sku) is str
                and 0 < len(sku) <= 64
                and min(sku) >= " "
                and "\x7f" not in sku
                and type(cat) is str
                and len(cat) <= 64
                and (not cat or (min(cat) >= " " and "\x7f" not in cat))
                and type(q) is int
                and 1 <= q <= MAX_QTY
                and type(p) is int
                and 0 <= p <= MAX_AMOUNT
            ):
                where = "basket.lines[%d]" % i
                sku = _text_field(ln, "sku", where)
                cat = _text_field(ln, "category", where, False) or ""
                q = _int_field(ln, "qty", where, 1, MAX_QTY)
                p = _int_field(ln, "unit_price", where, 0, MAX_AMOUNT)
            self.skus.append(sku)
            self.cats.append(cat)
            self.qty.append(q)
            self.price.append(p)
            self.gross.append(q * p)
            total += q * p
        # The inline check lets a lone surrogate through; encode all the line texts at
        # once (one pass in C, instead of a max() per text, which is slow on
        # MicroPython) and, if that fails, let the field checker name the field.
        try:
            "".join(self.skus).encode("utf-8")
            "".join(self.cats).encode("utf-8")
        except UnicodeError:
            for i in range(len(lines)):
                _text(self.skus[i], "basket.lines[%d].sku" % i)
                if self.cats[i]:
                    _text(self.cats[i], "basket.lines[%d].category" % i)
        if total > MAX_AMOUNT:
            raise _bad(
                "basket", "total above %d Rials" % (MAX_AMOUNT,), "جمع سبد بیش از حد مجاز است."
            )
        if basket.get("total") is not None and basket.get("total") != total:
            raise _bad(
                "basket.total",
                "is %r but the lines add up to %d" % (basket.get("total"), total),
                "جمع سبد خرید با اقلام آن یکسان نیست.",
            )
        self.subtotal = total
        self.store = _text_field(basket, "store", "basket", False)
        codes = basket.get("coupons", [])
        if type(codes) is not list:
            raise _bad("basket.coupons", "must be a list of codes", "فهرست کدها نامعتبر است.")
        if len(codes) > MAX_COUPONS:
            raise _bad(
                "basket.coupons",
                "more than %d codes" % (MAX_COUPONS,),
                "تعداد کدهای تخفیف بیش از حد مجاز است.",
            )
        self.coupons = []
        seen = {}
        for raw in codes:
            # surrounding blanks (a scanner's trailing CR) are not part of the code
            c = _text(raw.strip() if type(raw) is str else raw, "basket.coupons").upper()
            if c not in seen:
                seen[c] = 1
                self.coupons.append(c)
        self.redeem_points = _request(basket, "redeem_points")
        self.use_wallet = _request(basket, "use_wallet")


class Member:
    def __init__(self, m, now_day, window_days):
        if type(m) is not dict:
            raise _bad("member", "must be an object")
        self.ref = _text_field(m, "ref", "member")
        self.points = _int_field(m, "points", "member", -MAX_AMOUNT, MAX_AMOUNT, 0)
        self.wallet = _int_field(m, "wallet", "member", -MAX_AMOUNT, MAX_AMOUNT, 0)
        self.visits = _int_field(m, "visits", "member", 0, 10**9, 0)
        self.birthday = None
        b = m.get("birthday")
        if b is not None:
            try:
                self.birthday = jalali.parse(b)
            except DateError as e:
                raise _bad(
                    "member.birthday", "not a Jalali date YYYY-MM-DD (%s)" % (e.reason,)
                ) from None
        self.birthday_claimed = _int_field(m, "birthday_claimed", "member", 0, 9999, 0)
        self.anniversary = None
        a = m.get("anniversary")
        if a is not None:
            try:
                self.anniversary = jalali.parse(a)
            except DateError as e:
                raise _bad(
                    "member.anniversary", "not a Jalali date YYYY-MM-DD (%s)" % (e.reason,)
                ) from None
        self.anniversary_claimed = _int_field(m, "anniversary_claimed", "member", 0, 9999, 0)
        self.coupons = self._codes(m, "coupons")
        self.used_coupons = self._codes(m, "used_coupons")
        # Rolling spend over the tier window, up to and including today.
        spend = 0
        hist = m.get("spend", [])
        if type(hist) is not list:
            raise _bad("member.spend", "must be a list of [date, rials]")
        oldest = now_day - window_days
        for e in hist:
            # an entry may be negative: refunds on a day can exceed its purchases
            if type(e) is not list or len(e) != 2 or type(e[1]) is not int:
                raise _bad("member.spend", 'each entry must be ["YYYY-MM-DD", rials]')
            try:
                y, mo, d = split_ymd(e[0])
                day = days_from_civil(y, mo, d)
            except DateError as err:
                raise _bad("member.spend", err.reason) from None
            if oldest < day <= now_day:
                spend += e[1]
        self.spend = spend if spend > 0 else 0
        # What the member already got today (daily caps).
        self.today_discount = 0
        self.today_points = 0
        t = m.get("today")
        if t is not None:
            if type(t) is not dict:
                raise _bad("member.today", "must be {date, discount, points}")
            try:
                y, mo, d = split_ymd(t.get("date"))
                tday = days_from_civil(y, mo, d)
            except DateError as err:
                raise _bad("member.today.date", err.reason) from None
            if tday == now_day:
                self.today_discount = _int_field(t, "discount", "member.today", 0, MAX_AMOUNT, 0)
                self.today_points = _int_field(t, "points", "member.today", 0, MAX_AMOUNT, 0)

    def _codes(self, m, name):
        v = m.get(name, [])
        if type(v) is not list:
            raise _bad("member." + name, "must be a list of codes")
        out = {}
        for c in v:
            if type(c) is not str:
                raise _bad("member." + name, "codes must be text")
            out[c.strip().upper()] = 1
        return out
