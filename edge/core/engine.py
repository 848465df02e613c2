"""The quote: (rules, basket, member, time) -> discounts, points, wallet (MicroPython subset).

``quote`` is a pure function.  Evaluation order, rounding and caps are documented in
docs/rules.md; in short:

1. eligibility of every candidate rule (conditions, scope, coupon codes), then one
   winner per exclusive group: the eligible rule with the lowest (priority, id);
2. discounts (promotions, coupons, birthday) in (priority, id) order, each on the
   lines' current net, clipped by the rule's own cap, the line cap, the transaction
   cap and the member's daily cap;
3. points redemption, then wallet credit;
4. earning on what is paid in money (net minus wallet), with per-line multipliers
   (the highest applies) and the tier multiplier, plus bonuses, clipped by the daily
   points cap;
5. cashback (tier and campaign) on what is paid in money.

All arithmetic is integer; every division rounds down (in the merchant's favour for
discounts, points and cashback) and every amount spread over lines goes through
:func:`edge.core.alloc.allocate`, so per-line figures always add up to the totals.
"""

from edge.core import explain, jalali
from edge.core.alloc import allocate
from edge.core.dates import iso_weekday, parse_timestamp
from edge.core.errors import InputError
from edge.core.inputs import Basket, Member
from edge.core.ruleset import (
    PHASE_CASHBACK,
    PHASE_DISCOUNT,
    PHASE_EARN,
)

_EMPTY = ()


class _State:
    """Per-quote working state: per-line integer columns and the applied log."""

    def __init__(self, b):
        n = len(b.gross)
        self.n = n
        self.net = list(b.gross)
        self.promo = [0] * n
        self.redeem_disc = [0] * n
        self.redeemed = [0] * n
        self.wallet = [0] * n
        self.points = [0] * n
        self.cashback = [0] * n
        self.line_rules = [[] for _ in range(n)]
        self.promo_total = 0
        self.applied = []


def _time_ok(r, day, weekday, minute):
    if r.day_from is not None and day < r.day_from:
        return False
    if r.day_until is not None and day > r.day_until:
        return False
    if r.weekdays is not None and weekday not in r.weekdays:
        return False
    if r.hour_from is not None:
        if r.hour_from < r.hour_until:
            if minute < r.hour_from or minute >= r.hour_until:
                return False
        elif minute < r.hour_from and minute >= r.hour_until:
            return False  # a window across midnight, e.g. 22:00-02:00
    return True


def _birthday_ok(r, member, day):
    # a birthday rule's occasion: the member's birthday or their wedding anniversary
    if member is None:
        return False
    if r.p["occasion"] == "anniversary":
        date, claimed = member.anniversary, member.anniversary_claimed
    else:
        date, claimed = member.birthday, member.birthday_claimed
    if date is None:
        return False
    by, bm, bd = date
    jy = jalali.from_days(day)[0]
    # The nearest anniversary: this Jalali year's, or a neighbour's across Nowruz.
    for y in (jy - 1, jy, jy + 1):
        a = jalali.anniversary(by, bm, bd, y)
        if a - r.p["days_before"] <= day <= a + r.p["days_after"]:
            if r.p["once_a_year"] and claimed >= y:
                return False
            return y
    return False


def _bxgy_groups(b, lines):
    # Units of the same SKU count together; the cheapest units are the free ones.
    groups = {}
    for i in lines:
        groups.setdefault(b.skus[i], []).append(i)
    return groups


def quote(rs, basket, member=None, at=None, used_codes=None):
    """Quote a basket.  See the module docstring and docs/rules.md.

    ``rs`` is a compiled :class:`~edge.core.ruleset.RuleSet`; ``basket`` and
    ``member`` are plain dicts (member may be None for an anonymous customer); ``at``
    is an ISO timestamp with offset or a dict from ``parse_timestamp``;
    ``used_codes`` is an optional collection of single-use coupon codes this
    terminal has already seen redeemed.
    """
    if type(at) is str:
        t = parse_timestamp(at)
    elif type(at) is dict:
        t = at
    else:
        raise InputError("at", "an ISO timestamp with a UTC offset is required")
    day = t["day"]
    minute = t["minute"]
    weekday = iso_weekday(day)
    b = Basket(basket)
    m = None if member is None else Member(member, day, rs.window_days)
    tier = rs.tier_for_spend(m.spend) if m is not None else None
    st = _State(b)
    n = st.n

    # -- candidates: rules that can match some line, plus unscoped ones ---------------
    per_rule = {}
    for i in range(n):
        for index, key in ((rs.by_sku, b.skus[i]), (rs.by_category, b.cats[i])):
            for r in index.get(key, _EMPTY):
                lst = per_rule.get(r)
                if lst is None:
                    per_rule[r] = [i]
                elif lst[-1] != i:
                    lst.append(i)
    all_lines = list(range(n))
    cands = list(per_rule.keys())
    for r in rs.unscoped:
        per_rule[r] = all_lines
        cands.append(r)

    # Coupons: presented codes select their rules; unknown/invalid codes are reported.
    rejected = []
    coupon_of = {}
    for code in b.coupons:
        r = rs.by_code.get(code)
        why = None
        if r is None:
            why = "unknown"
        elif m is None and (
            r.members_only
            or r.p["member_bound"]
            or (r.p["bp"] is None and r.p["off_rials"] is None)  # it only gives points
        ):
            why = "member"
        elif r.p["member_bound"] and code not in m.coupons:
            why = "not_yours"
        elif r.p["single_use"] and (
            (m is not None and code in m.used_coupons)
            or (used_codes is not None and code in used_codes)
        ):
            why = "used"
        elif r in coupon_of:
            why = "used"  # two codes of the same rule in one basket
        else:
            lines = [i for i in all_lines if r.matches_line(b.skus[i], b.cats[i])]
            if not lines:
                why = "conditions"
            else:
                per_rule[r] = lines
                coupon_of[r] = code
                cands.append(r)
        if why is not None:
            rejected.append(_rejection(code, why))

    # -- eligibility -------------------------------------------------------------------
    eligible = []
    bday_year = {}
    for r in cands:
        if m is None and (r.members_only or r.phase != PHASE_DISCOUNT):
            continue
        if not _time_ok(r, day, weekday, minute):
            continue
        if r.tiers is not None and (tier is None or tier.id not in r.tiers):
            continue
        if r.stores is not None and b.store not in r.stores:
            continue
        if b.subtotal < r.min_subtotal:
            continue
        k = r.kind
        if k == "basket_threshold":
            s = 0
            for i in per_rule[r]:
                s += b.gross[i]
            if s < r.p["min_spend"]:
                continue
        elif k == "buy_x_get_y":
            need = r.p["buy"] + r.p["get"]
            ok = False
            for lines in _bxgy_groups(b, per_rule[r]).values():
                q = 0
                for i in lines:
                    q += b.qty[i]
                if q >= need:
                    ok = True
            if not ok:
                continue
        elif k == "welcome_bonus":
            if m.visits != 0:
                continue
        elif k == "birthday":
            y = _birthday_ok(r, m, day)
            if y is False:
                continue
            bday_year[r] = y
        eligible.append(r)

    winners = {}
    for r in eligible:
        g = r.exclusive
        if g is not None:
            w = winners.get(g)
            if w is None or (r.priority, r.id) < (w.priority, w.id):
                winners[g] = r
    active = []
    for r in eligible:
        if r.exclusive is None or winners[r.exclusive] is r:
            active.append(r)
    # sort plain ints, not objects by a key function (eight times faster on MicroPython)
    order = [r.ordinal for r in active]
    order.sort()
    active = [rs.rules[o] for o in order]
    for r in list(coupon_of.keys()):
        if r not in active:
            why = "outranked" if r in eligible else "conditions"
            rejected.append(_rejection(coupon_of.pop(r), why))

    # -- phases ------------------------------------------------------------------------
    bonus = []  # (rule, points) from discount-phase rules that also give points
    lim = rs.limits
    txn_cap = b.subtotal * lim["txn_discount_bp"] // 10000
    if lim["txn_discount_rials"] < txn_cap:
        txn_cap = lim["txn_discount_rials"]
    if m is not None:
        daily = lim["member_daily_discount_rials"] - m.today_discount
        if daily < txn_cap:
            txn_cap = daily if daily > 0 else 0
    line_bp = lim["line_discount_bp"]

    mult = None
    for r in active:
        ph = r.phase
        lines = per_rule[r]
        if ph == PHASE_DISCOUNT:
            extra = {}
            if r in coupon_of:
                extra["coupon"] = coupon_of[r]
            if r in bday_year:
                if r.p["occasion"] == "anniversary":
                    extra["anniversary_year"] = bday_year[r]
                else:
                    extra["birthday_year"] = bday_year[r]
            gave = 0
            if r.p.get("bp") is not None or r.p.get("off_rials") is not None:
                gave = _discount(r, lines, b, st, txn_cap, line_bp, extra)
            if r.p.get("points") and m is not None:
                bonus.append((r, r.p["points"], extra))
            elif not gave and r in coupon_of:
                # the caps left nothing to give: the code is not spent for nothing
                # (a birthday gift that gave nothing is not claimed either: no entry)
                rejected.append(_rejection(coupon_of.pop(r), "limit"))
        elif ph == PHASE_EARN and r.kind == "earn_multiplier":
            if mult is None:
                mult = [100] * n
            for i in lines:
                if r.p["pct"] > mult[i]:
                    mult[i] = r.p["pct"]
                st.line_rules[i].append(r.id)
            fa, en = explain.points_line(r, 0)
            st.applied.append({"rule": r.id, "kind": r.kind, "lines": lines, "fa": fa, "en": en})

    notices = []
    if m is None:
        if b.redeem_points or b.use_wallet:
            notices.append(_notice("member"))
    else:
        if b.redeem_points > 0:
            if rs.redeem is None:
                notices.append(_notice("no_redeem"))
            elif not _redeem(rs.redeem, b, m, st):
                notices.append(_notice("few_points"))
        if b.use_wallet > 0 and not _wallet(rs.wallet, b, m, st):
            notices.append(_notice("no_wallet"))

    paid = [st.net[i] - st.wallet[i] for i in range(n)]
    if m is not None:
        _earn(active, per_rule, paid, mult, tier, bonus, lim, m, st)
        _cashback(active, per_rule, paid, tier, st)

    if len(rejected) > 1:
        rejected.sort(key=lambda x: x["code"])
    q = _result(rs, b, m, t, tier, st, paid, coupon_of, rejected)
    q["notices"] = notices
    return q


def _notice(key):
    fa, en = explain.NOTICES[key]
    return {"notice": key, "fa": fa, "en": en}


def _rejection(code, why):
    fa, en = explain.COUPON_REASONS[why]
    return {"code": code, "reason": why, "fa": fa, "en": en}


def _cap_to(total, shares):
    # Scale shares down to ``total`` (pro rata); unchanged when already within it.
    s = 0
    for x in shares:
        s += x
    if s <= total:
        return shares
    return allocate(total if total > 0 else 0, shares)


def _discount(r, lines, b, st, txn_cap, line_bp, extra):
    # Apply one discount rule; returns the amount (0: nothing applied, no entry).
    p = r.p
    k = r.kind
    net = st.net
    if k == "pct_off":
        d = [net[i] * p["bp"] // 10000 for i in lines]
    elif k == "buy_x_get_y":
        d = [0] * len(lines)
        pos = {}
        for j in range(len(lines)):
            pos[lines[j]] = j
        per = p["buy"] + p["get"]
        for glines in _bxgy_groups(b, lines).values():
            q = 0
            for i in glines:
                q += b.qty[i]
            free = (q // per) * p["get"]
            for _, i in sorted([(b.price[i], i) for i in glines]):
                if free <= 0:
                    break
                u = b.qty[i] if b.qty[i] < free else free
                free -= u
                x = u * (b.price[i] * p["bp"] // 10000)
                d[pos[i]] = x if x < net[i] else net[i]
    else:  # basket_threshold, coupon, birthday: a basket amount spread pro rata
        base = 0
        for i in lines:
            base += net[i]
        if p["bp"] is not None:
            total = base * p["bp"] // 10000
        elif p["off_rials"] is not None:
            total = p["off_rials"] if p["off_rials"] < base else base
        else:
            total = 0
        d = allocate(total, [net[i] for i in lines])
    uncapped = 0
    for x in d:
        uncapped += x
    if p.get("max_rials") is not None:
        d = _cap_to(p["max_rials"], d)
    for j in range(len(lines)):
        i = lines[j]
        room = b.gross[i] * line_bp // 10000 - st.promo[i]
        if room > net[i]:
            room = net[i]
        if d[j] > room:
            d[j] = room if room > 0 else 0
    d = _cap_to(txn_cap - st.promo_total, d)
    amount = 0
    for j in range(len(lines)):
        i = lines[j]
        if d[j]:
            net[i] -= d[j]
            st.promo[i] += d[j]
            st.line_rules[i].append(r.id)
        amount += d[j]
    if amount == 0:
        return 0
    st.promo_total += amount
    fa, en = explain.discount(r, amount, extra.get("coupon", ""), uncapped)
    entry = {"rule": r.id, "kind": r.kind, "discount": amount, "lines": lines, "fa": fa, "en": en}
    for k in extra:
        entry[k] = extra[k]
    st.applied.append(entry)
    return amount


def _redeem(r, b, m, st):
    p = r.p
    base = 0
    for x in st.net:
        base += x
    cap = base * p["max_bp"] // 10000
    if p["max_rials"] < cap:
        cap = p["max_rials"]
    want = b.redeem_points if b.redeem_points < m.points else m.points
    if p["mode"] == "step":
        sp = p["step_points"]
        steps = want // sp
        if steps > p["max_steps"]:
            steps = p["max_steps"]
        per_step = base * p["step_bp"]  # discount of one step, times 10000
        amount = per_step * steps // 10000
        if amount > cap:
            amount = cap
            # the fewest steps that reach the cap: never take points for nothing
            if per_step > 0:
                steps = (cap * 10000 + per_step - 1) // per_step
        points = steps * sp
    else:
        rpp = p["rials_per_point"]
        points = want
        if points * rpp > cap:
            points = cap // rpp
        if points < p["min_points"]:
            points = 0
        amount = points * rpp
    if points <= 0 or amount <= 0:
        return False
    shares = allocate(amount, list(st.net))
    pts = allocate(points, shares)
    lines = []
    for i in range(st.n):
        if shares[i]:
            st.net[i] -= shares[i]
            st.redeem_disc[i] += shares[i]
            st.redeemed[i] += pts[i]
            st.line_rules[i].append(r.id)
            lines.append(i)
    fa, en = explain.redeemed(points, amount)
    st.applied.append(
        {
            "rule": r.id,
            "kind": r.kind,
            "discount": amount,
            "points": -points,
            "lines": lines,
            "fa": fa,
            "en": en,
        }
    )
    return True


def _wallet(r, b, m, st):
    base = 0
    for x in st.net:
        base += x
    cap = base if r is None else base * r.p["max_bp"] // 10000
    amount = b.use_wallet
    if m.wallet < amount:
        amount = m.wallet
    if cap < amount:
        amount = cap
    if amount <= 0:
        return False
    shares = allocate(amount, list(st.net))
    lines = []
    for i in range(st.n):
        if shares[i]:
            st.wallet[i] += shares[i]
            lines.append(i)
    fa, en = explain.wallet_used(amount)
    st.applied.append(
        {
            "rule": r.id if r is not None else "wallet",
            "kind": "wallet",
            "wallet": -amount,
            "lines": lines,
            "fa": fa,
            "en": en,
        }
    )
    return True


def _earn(active, per_rule, paid, mult, tier, bonus, lim, m, st):
    n = st.n
    tier_pct = tier.earn_pct
    earned = [0] * n
    total = 0
    for r in active:
        if r.phase != PHASE_EARN:
            continue
        k = r.kind
        if k == "earn_rate":
            lines = per_rule[r]
            w = []
            s = 0
            for i in lines:
                x = paid[i] * (mult[i] if mult is not None else 100)
                w.append(x)
                s += x
            pts = s * tier_pct * r.p["points"] // (r.p["per_rials"] * 10000)
            if pts <= 0:
                continue
            shares = allocate(pts, w)
            for j in range(len(lines)):
                earned[lines[j]] += shares[j]
                if shares[j]:
                    st.line_rules[lines[j]].append(r.id)
            total += pts
            fa, en = explain.points_line(r, pts, tier)
            st.applied.append(
                {"rule": r.id, "kind": k, "points": pts, "lines": lines, "fa": fa, "en": en}
            )
        elif k == "earn_visit" or k == "welcome_bonus":
            bonus.append((r, r.p["points"], None))
    if tier_pct != 100 and total > 0:
        fa, en = explain.tier_multiplier(tier)
        st.applied.append(
            {"rule": "tier:" + tier.id, "kind": "tier", "lines": [], "fa": fa, "en": en}
        )
    extra = 0
    for r, pts, info in bonus:
        extra += pts
        fa, en = explain.points_line(r, pts)
        entry = {"rule": r.id, "kind": r.kind, "points": pts, "lines": [], "fa": fa, "en": en}
        if info:
            for k in info:
                entry[k] = info[k]
        st.applied.append(entry)
    if extra:
        shares = allocate(extra, paid)
        for i in range(n):
            earned[i] += shares[i]
        total += extra
    room = lim["member_daily_points"] - m.today_points
    if room < 0:
        room = 0
    if total > room:
        cut = total - room
        earned = allocate(room, earned)
        total = room
        fa, en = explain.capped_points(cut)
        st.applied.append(
            {
                "rule": "limit:member_daily_points",
                "kind": "limit",
                "points": -cut,
                "lines": [],
                "fa": fa,
                "en": en,
            }
        )
    st.points = earned


def _cashback(active, per_rule, paid, tier, st):
    sources = []
    if tier.cashback_bp:
        sources.append((None, tier.cashback_bp, list(range(st.n))))
    for r in active:
        if r.phase == PHASE_CASHBACK:
            sources.append((r, r.p["bp"], per_rule[r]))
    for r, bp, lines in sources:
        w = [paid[i] for i in lines]
        s = 0
        for x in w:
            s += x
        amount = s * bp // 10000
        if amount <= 0:
            continue
        shares = allocate(amount, w)
        for j in range(len(lines)):
            st.cashback[lines[j]] += shares[j]
        if r is None:
            fa, en = explain.cashback("سطح " + tier.fa, tier.en + " tier", bp, amount)
            rid = "tier:" + tier.id
            kind = "tier_cashback"
        else:
            fa, en = explain.cashback(r.fa, r.en, bp, amount)
            rid = r.id
            kind = r.kind
            for i in lines:
                st.line_rules[i].append(r.id)
        st.applied.append(
            {"rule": rid, "kind": kind, "wallet": amount, "lines": lines, "fa": fa, "en": en}
        )


def _result(rs, b, m, t, tier, st, paid, coupon_of, rejected):
    out_lines = []
    promo = 0
    rdisc = 0
    wallet = 0
    payable = 0
    points = 0
    redeemed = 0
    cashback = 0
    for i in range(st.n):
        disc = st.promo[i] + st.redeem_disc[i]
        out_lines.append(
            {
                "sku": b.skus[i],
                "category": b.cats[i],
                "qty": b.qty[i],
                "unit_price": b.price[i],
                "gross": b.gross[i],
                "discount": disc,
                "net": st.net[i],
                "wallet": st.wallet[i],
                "paid": paid[i],
                "points": st.points[i],
                "redeemed": st.redeemed[i],
                "cashback": st.cashback[i],
                "rules": st.line_rules[i],
            }
        )
        promo += st.promo[i]
        rdisc += st.redeem_disc[i]
        wallet += st.wallet[i]
        payable += paid[i]
        points += st.points[i]
        redeemed += st.redeemed[i]
        cashback += st.cashback[i]
    used = [coupon_of[r] for r in coupon_of]
    used.sort()
    q = {
        "type": "sale",
        "rules_version": rs.version,
        "at": t["iso"],
        "currency": "IRR",
        "store": b.store,
        "subtotal": b.subtotal,
        "promo_discount": promo,
        "points_discount": rdisc,
        "discount": promo + rdisc,
        "wallet_used": wallet,
        "payable": payable,
        "points_earned": points,
        "points_redeemed": redeemed,
        "wallet_earned": cashback,
        "lines": out_lines,
        "applied": st.applied,
        "coupons_used": used,
        "coupons_rejected": rejected,
        "member": None,
    }
    if m is not None:
        q["member"] = {
            "ref": m.ref,
            "tier": tier.id,
            "tier_fa": tier.fa,
            "tier_en": tier.en,
            "rolling_spend": m.spend,
            "points_before": m.points,
            "points_after": m.points - redeemed + points,
            "wallet_before": m.wallet,
            "wallet_after": m.wallet - wallet + cashback,
        }
    return q
