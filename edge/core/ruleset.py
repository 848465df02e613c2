"""Rules bundle: validation, compilation and indexing (MicroPython subset).

A bundle is plain data (JSON or CBOR, schema in docs/rules.md).  ``compile_rules``
checks all of it and returns a :class:`RuleSet`, or raises :class:`RuleError` naming
the rule and the reason.  :class:`RuleBook` holds the rule set in force and keeps it
when a replacement is refused.

Compilation indexes line-scoped rules by SKU and category so a quote only looks at
rules that can match the basket, and resolves every date (Gregorian or Jalali) to a
day number once.
"""

from edge.core import jalali
from edge.core.dates import WEEKDAYS, days_from_civil, parse_date, parse_hhmm
from edge.core.errors import DateError, RuleError

MAX_AMOUNT = 10**15  # Rials; anything larger is a typo, not a price
MAX_POINTS = 10**12

# Evaluation phases, in order (docs/rules.md, "Evaluation order").
PHASE_DISCOUNT = 1
PHASE_REDEEM = 2
PHASE_WALLET = 3
PHASE_EARN = 4
PHASE_CASHBACK = 5

_COMMON = ("id", "kind", "name", "priority", "groups", "when", "skus", "categories")

# kind -> (phase, allowed kind-specific fields, scoped?)
KINDS = {
    "earn_rate": (PHASE_EARN, ("points", "per_rials"), True),
    "earn_multiplier": (PHASE_EARN, ("pct",), True),
    "earn_visit": (PHASE_EARN, ("points",), False),
    "welcome_bonus": (PHASE_EARN, ("points",), False),
    "pct_off": (PHASE_DISCOUNT, ("bp", "max_rials"), True),
    "basket_threshold": (PHASE_DISCOUNT, ("min_spend", "bp", "off_rials", "max_rials"), True),
    "buy_x_get_y": (PHASE_DISCOUNT, ("buy", "get", "bp"), True),
    "coupon": (
        PHASE_DISCOUNT,
        ("codes", "single_use", "member_bound", "bp", "off_rials", "max_rials", "points"),
        True,
    ),
    "birthday": (
        PHASE_DISCOUNT,
        (
            "occasion",
            "days_before",
            "days_after",
            "once_a_year",
            "bp",
            "off_rials",
            "max_rials",
            "points",
        ),
        False,
    ),
    "cashback": (PHASE_CASHBACK, ("bp",), True),
    "redeem_points": (
        PHASE_REDEEM,
        (
            "mode",
            "step_points",
            "step_bp",
            "max_steps",
            "rials_per_point",
            "min_points",
            "max_bp",
            "max_rials",
        ),
        False,
    ),
    "wallet": (PHASE_WALLET, ("max_bp",), False),
}

# Line offers go before basket offers unless a rule says otherwise, so a basket
# discount is computed on prices already reduced by item promotions.
DEFAULT_PRIORITY = {"basket_threshold": 200, "coupon": 200, "birthday": 200}

_WHEN_FIELDS = ("dates", "weekdays", "hours", "tiers", "stores", "min_subtotal", "members_only")
_POLICY_FIELDS = (
    "points_expiry_days",
    "offline_points_limit",
    "offline_wallet_limit",
    "refund_clawback",
    "point_value_rials",
    "adjust_overdraft",
    "referral_referrer_points",
    "referral_referee_points",
)
CLAWBACK = ("deduct", "overdraft")
_LIMIT_FIELDS = (
    "line_discount_bp",
    "txn_discount_bp",
    "txn_discount_rials",
    "member_daily_discount_rials",
    "member_daily_points",
)


def _fail(rule, reason):
    return RuleError(rule, reason)


def _check_fields(where, obj, allowed):
    if type(obj) is not dict:
        raise _fail(where, "must be an object")
    for k in obj:
        if k not in allowed:
            raise _fail(where, "unknown field %r" % (k,))


def _int(where, obj, name, lo, hi, default=None):
    v = obj.get(name)
    if v is None:
        if default is None:
            raise _fail(where, "missing %r" % (name,))
        return default
    if type(v) is not int:
        raise _fail(
            where, "%r must be an integer (no fractions in money or points), got %r" % (name, v)
        )
    if v < lo:
        raise _fail(where, "%r is %d, below the minimum %d" % (name, v, lo))
    if v > hi:
        raise _fail(where, "%r is %d, above the sane maximum %d" % (name, v, hi))
    return v


def _opt_int(where, obj, name, lo, hi):
    if obj.get(name) is None:
        return None
    return _int(where, obj, name, lo, hi)


def _bool(where, obj, name, default):
    v = obj.get(name)
    if v is None:
        return default
    if v is not True and v is not False:
        raise _fail(where, "%r must be true or false" % (name,))
    return v


def _text(where, v, what, maxlen=200):
    if type(v) is not str or not v.strip():
        raise _fail(where, "%s must be non-empty text" % (what,))
    if len(v) > maxlen:
        raise _fail(where, "%s is longer than %d characters" % (what, maxlen))
    return v


def _ident(where, v, what):
    _text(where, v, what, 64)
    for c in v:
        if not ("a" <= c <= "z" or "A" <= c <= "Z" or "0" <= c <= "9" or c in "-_.:/"):
            raise _fail(where, "%s %r may only use letters, digits and - _ . : /" % (what, v))
    return v


def _str_list(where, obj, name, ident=True):
    v = obj.get(name)
    if v is None:
        return None
    if type(v) is not list or not v:
        raise _fail(where, "%r must be a non-empty list" % (name,))
    out = []
    for x in v:
        out.append(_ident(where, x, name) if ident else _text(where, x, name))
    return out


def _names(where, obj):
    n = obj.get("name")
    if type(n) is not dict:
        raise _fail(where, '\'name\' must be {"fa": ..., "en": ...}')
    _check_fields(where, n, ("fa", "en"))
    return (_text(where, n.get("fa"), "name.fa"), _text(where, n.get("en"), "name.en"))


class Tier:
    def __init__(self, tid, min_spend, earn_pct, cashback_bp, fa, en):
        self.id = tid
        self.min_spend = min_spend
        self.earn_pct = earn_pct
        self.cashback_bp = cashback_bp
        self.fa = fa
        self.en = en


class Rule:
    """One compiled rule.  ``p`` holds the kind-specific parameters."""

    def __init__(self, rid, kind, phase, fa, en, priority, p):
        self.id = rid
        self.kind = kind
        self.phase = phase
        self.fa = fa
        self.en = en
        self.priority = priority
        self.p = p
        self.skus = None
        self.categories = None
        self.ordinal = 0
        self.exclusive = None  # the exclusive group it belongs to, if any
        self.how = None  # cached explanation text (edge.core.explain)
        # the compiled "when" conditions
        self.day_from = None
        self.day_until = None
        self.weekdays = None  # set of ISO weekday numbers
        self.hour_from = None
        self.hour_until = None
        self.tiers = None
        self.stores = None
        self.min_subtotal = 0
        self.members_only = True

    def scoped(self):
        return self.skus is not None or self.categories is not None

    def matches_line(self, sku, category):
        if self.skus is None and self.categories is None:
            return True
        if self.skus is not None and sku in self.skus:
            return True
        return self.categories is not None and category in self.categories


class RuleSet:
    """A validated, indexed rules bundle.  Treat as immutable."""

    def __init__(self):
        self.version = 0
        self.tenant = ""
        self.tiers = []
        self.window_days = 365
        self.limits = {}
        self.policy = {}
        self.rules = []  # sorted by (phase, priority, id)
        self.by_id = {}
        self.by_sku = {}  # sku -> [Rule] (ordinal order)
        self.by_category = {}  # category -> [Rule]
        self.unscoped = []  # line rules without scope + basket rules, ordinal order
        self.by_code = {}  # coupon code -> Rule
        self.redeem = None  # the redeem_points rule in force (lowest priority) or None
        self.wallet = None
        self.doc = None  # the source document

    def tier_for_spend(self, spend):
        best = self.tiers[0]
        for t in self.tiers:
            if spend >= t.min_spend:
                best = t
        return best


def _compile_when(r, w, tier_ids):
    where = r.id
    _check_fields(where + ".when", w, _WHEN_FIELDS)
    d = w.get("dates")
    if d is not None:
        _check_fields(where + ".when.dates", d, ("from", "until", "calendar"))
        cal = d.get("calendar", "gregorian")
        if cal != "gregorian" and cal != "jalali":
            raise _fail(where, "dates.calendar must be 'gregorian' or 'jalali'")
        try:
            if d.get("from") is not None:
                r.day_from = _day(d.get("from"), cal)
            if d.get("until") is not None:
                r.day_until = _day(d.get("until"), cal)
        except DateError as e:
            raise _fail(where, "dates: %s" % (e.reason,)) from None
        if r.day_from is None and r.day_until is None:
            raise _fail(where, "dates needs 'from' and/or 'until'")
        if r.day_from is not None and r.day_until is not None and r.day_until < r.day_from:
            raise _fail(
                where, "window ends (%s) before it starts (%s)" % (d.get("until"), d.get("from"))
            )
    wd = w.get("weekdays")
    if wd is not None:
        if type(wd) is not list or not wd:
            raise _fail(where, 'weekdays must be a non-empty list like ["fri", "sat"]')
        r.weekdays = set()
        for name in wd:
            if name not in WEEKDAYS:
                raise _fail(where, "unknown weekday %r (use %s)" % (name, ", ".join(WEEKDAYS)))
            r.weekdays.add(WEEKDAYS.index(name) + 1)
    h = w.get("hours")
    if h is not None:
        if type(h) is not list or len(h) != 2:
            raise _fail(where, 'hours must be ["HH:MM", "HH:MM"]')
        try:
            r.hour_from = parse_hhmm(h[0])
            r.hour_until = parse_hhmm(h[1])
        except DateError as e:
            raise _fail(where, "hours: %s" % (e.reason,)) from None
        if r.hour_from == r.hour_until:
            raise _fail(where, "hours window is empty (starts and ends at %s)" % (h[0],))
    t = _str_list(where, w, "tiers")
    if t is not None:
        for tid in t:
            if tid not in tier_ids:
                raise _fail(where, "unknown tier %r" % (tid,))
        r.tiers = set(t)
    s = _str_list(where, w, "stores")
    if s is not None:
        r.stores = set(s)
    r.min_subtotal = _int(where, w, "min_subtotal", 0, MAX_AMOUNT, 0)
    r.members_only = _bool(where, w, "members_only", True)


def _day(text, cal):
    if cal == "jalali":
        y, m, d = jalali.parse(text)
        return jalali.to_days(y, m, d)
    y, m, d = parse_date(text)
    return days_from_civil(y, m, d)


def _effect_amount(where, p, src, need_one=True):
    # Exactly one of bp / off_rials (or neither when the rule only gives points).
    bp = _opt_int(where, src, "bp", 1, 10000)
    off = _opt_int(where, src, "off_rials", 1, MAX_AMOUNT)
    if bp is not None and off is not None:
        raise _fail(where, "give either 'bp' or 'off_rials', not both")
    if need_one and bp is None and off is None:
        raise _fail(where, "needs 'bp' (basis points off) or 'off_rials'")
    p["bp"] = bp
    p["off_rials"] = off
    p["max_rials"] = _opt_int(where, src, "max_rials", 1, MAX_AMOUNT)


def _compile_params(where, kind, src):
    p = {}
    if kind == "earn_rate":
        p["points"] = _int(where, src, "points", 1, 10**6)
        p["per_rials"] = _int(where, src, "per_rials", 1, MAX_AMOUNT)
        if p["points"] * 100 > p["per_rials"]:
            raise _fail(
                where,
                "earning %d points per %d Rials is absurd (limit: 1 point per "
                "100 Rials)" % (p["points"], p["per_rials"]),
            )
    elif kind == "earn_multiplier":
        p["pct"] = _int(where, src, "pct", 100, 1000)
    elif kind == "earn_visit" or kind == "welcome_bonus":
        p["points"] = _int(where, src, "points", 1, 10**6)
    elif kind == "pct_off":
        _effect_amount(where, p, src)
        if p["off_rials"] is not None:
            raise _fail(where, "pct_off takes 'bp'; use basket_threshold for a fixed amount")
    elif kind == "basket_threshold":
        p["min_spend"] = _int(where, src, "min_spend", 1, MAX_AMOUNT)
        _effect_amount(where, p, src)
        if p["off_rials"] is not None and p["off_rials"] > p["min_spend"]:
            raise _fail(
                where,
                "off_rials %d exceeds the threshold %d it rewards"
                % (p["off_rials"], p["min_spend"]),
            )
    elif kind == "buy_x_get_y":
        p["buy"] = _int(where, src, "buy", 1, 1000)
        p["get"] = _int(where, src, "get", 1, 1000)
        p["bp"] = _int(where, src, "bp", 1, 10000, 10000)
    elif kind == "coupon":
        codes = src.get("codes")
        if type(codes) is not list or not codes:
            raise _fail(where, "'codes' must be a non-empty list of coupon codes")
        p["codes"] = [_ident(where, c, "coupon code").upper() for c in codes]
        p["single_use"] = _bool(where, src, "single_use", False)
        p["member_bound"] = _bool(where, src, "member_bound", False)
        p["points"] = _int(where, src, "points", 1, 10**6, 0)
        _effect_amount(where, p, src, need_one=p["points"] == 0)
    elif kind == "birthday":
        # the member's birthday, or their wedding anniversary (both Jalali dates)
        p["occasion"] = src.get("occasion", "birthday")
        if p["occasion"] != "birthday" and p["occasion"] != "anniversary":
            raise _fail(where, "occasion must be 'birthday' or 'anniversary'")
        p["days_before"] = _int(where, src, "days_before", 0, 31, 0)
        p["days_after"] = _int(where, src, "days_after", 0, 31, 0)
        p["once_a_year"] = _bool(where, src, "once_a_year", True)
        p["points"] = _int(where, src, "points", 1, 10**6, 0)
        _effect_amount(where, p, src, need_one=p["points"] == 0)
    elif kind == "cashback":
        p["bp"] = _int(where, src, "bp", 1, 5000)
    elif kind == "redeem_points":
        mode = src.get("mode")
        p["mode"] = mode
        if mode == "step":
            p["step_points"] = _int(where, src, "step_points", 1, MAX_POINTS)
            p["step_bp"] = _int(where, src, "step_bp", 1, 10000)
            p["max_steps"] = _int(where, src, "max_steps", 1, 10000, 10000)
            for f in ("rials_per_point", "min_points"):
                if f in src:
                    raise _fail(where, "%r is for mode 'value'" % (f,))
        elif mode == "value":
            p["rials_per_point"] = _int(where, src, "rials_per_point", 1, 10**6)
            p["min_points"] = _int(where, src, "min_points", 1, MAX_POINTS, 1)
            for f in ("step_points", "step_bp", "max_steps"):
                if f in src:
                    raise _fail(where, "%r is for mode 'step'" % (f,))
        else:
            raise _fail(where, "mode must be 'step' or 'value'")
        p["max_bp"] = _int(where, src, "max_bp", 1, 10000, 10000)
        p["max_rials"] = _int(where, src, "max_rials", 1, MAX_AMOUNT, MAX_AMOUNT)
    elif kind == "wallet":
        p["max_bp"] = _int(where, src, "max_bp", 1, 10000, 10000)
    return p


def _compile_tiers(doc):
    t = doc.get("tiers")
    if t is None:
        return (365, [Tier("member", 0, 100, 0, "عضو", "Member")])
    _check_fields("tiers", t, ("window_days", "levels"))
    window = _int("tiers", t, "window_days", 1, 3660, 365)
    levels = t.get("levels")
    if type(levels) is not list or not levels:
        raise _fail("tiers", "'levels' must be a non-empty list")
    out = []
    seen = {}
    for i in range(len(levels)):
        lv = levels[i]
        where = "tiers.levels[%d]" % i
        _check_fields(where, lv, ("id", "min_spend", "earn_pct", "cashback_bp", "name"))
        tid = _ident(where, lv.get("id"), "tier id")
        if tid in seen:
            raise _fail(where, "duplicate tier id %r" % (tid,))
        seen[tid] = 1
        fa, en = _names(where, lv)
        tier = Tier(
            tid,
            _int(where, lv, "min_spend", 0, MAX_AMOUNT),
            _int(where, lv, "earn_pct", 100, 1000, 100),
            _int(where, lv, "cashback_bp", 0, 5000, 0),
            fa,
            en,
        )
        if i == 0 and tier.min_spend != 0:
            raise _fail(where, "the first tier must start at min_spend 0")
        if i > 0 and tier.min_spend <= out[-1].min_spend:
            raise _fail(where, "min_spend must increase from tier to tier")
        out.append(tier)
    return (window, out)


def _compile_groups(doc):
    g = doc.get("groups")
    out = {}
    if g is None:
        return out
    if type(g) is not dict:
        raise _fail("groups", 'must be an object of group id -> {"exclusive": bool}')
    for gid in g:
        _ident("groups", gid, "group id")
        spec = g[gid]
        _check_fields("groups." + gid, spec, ("exclusive",))
        out[gid] = _bool("groups." + gid, spec, "exclusive", False)
    return out


def _compile_rule(raw, tier_ids, groups):
    if type(raw) is not dict:
        raise _fail("?", "each rule must be an object")
    rid = raw.get("id")
    where = rid if type(rid) is str else "?"
    _ident(where, rid, "rule id")
    kind = raw.get("kind")
    if type(kind) is not str or kind not in KINDS:
        raise _fail(rid, "unknown kind %r (known: %s)" % (kind, ", ".join(sorted(KINDS.keys()))))
    phase, fields, scoped = KINDS[kind]
    allowed = _COMMON + fields
    _check_fields(rid, raw, allowed)
    fa, en = _names(rid, raw)
    r = Rule(
        rid,
        kind,
        phase,
        fa,
        en,
        _int(rid, raw, "priority", 0, 10**6, DEFAULT_PRIORITY.get(kind, 100)),
        _compile_params(rid, kind, raw),
    )
    skus = _str_list(rid, raw, "skus")
    cats = _str_list(rid, raw, "categories")
    if (skus is not None or cats is not None) and not scoped:
        raise _fail(
            rid, "kind %s applies to the whole basket; it takes no skus/categories" % (kind,)
        )
    if skus is not None:
        r.skus = set(skus)
    if cats is not None:
        r.categories = set(cats)
    gl = _str_list(rid, raw, "groups")
    if gl is not None:
        if kind == "redeem_points" or kind == "wallet":
            raise _fail(rid, "%s is a policy, not an offer; it cannot be in a group" % (kind,))
        for gid in gl:
            if gid not in groups:
                raise _fail(rid, "unknown group %r" % (gid,))
            if groups[gid]:
                if r.exclusive is not None:
                    raise _fail(
                        rid,
                        "in two exclusive groups (%s and %s): which one wins "
                        "would depend on evaluation order" % (r.exclusive, gid),
                    )
                r.exclusive = gid
    w = raw.get("when")
    if w is not None:
        _compile_when(r, w, tier_ids)
    return r


def compile_rules(doc):
    """Validate a rules bundle document and return a :class:`RuleSet`."""
    if type(doc) is not dict:
        raise _fail("bundle", "a rules bundle must be an object")
    _check_fields(
        "bundle",
        doc,
        (
            "schema",
            "version",
            "tenant",
            "currency",
            "tiers",
            "limits",
            "policy",
            "groups",
            "rules",
        ),
    )
    if doc.get("schema", 1) != 1:
        raise _fail(
            "bundle", "unsupported schema %r (this engine reads schema 1)" % (doc.get("schema"),)
        )
    if doc.get("currency", "IRR") != "IRR":
        raise _fail("bundle", "currency must be IRR (integer Rials)")
    rs = RuleSet()
    rs.doc = doc
    rs.version = _int("bundle", doc, "version", 1, 2**53)
    rs.tenant = _ident("bundle", doc.get("tenant", "default"), "tenant")
    rs.window_days, rs.tiers = _compile_tiers(doc)
    tier_ids = {}
    for t in rs.tiers:
        tier_ids[t.id] = 1
    lim = doc.get("limits", {})
    _check_fields("limits", lim, _LIMIT_FIELDS)
    rs.limits = {
        "line_discount_bp": _int("limits", lim, "line_discount_bp", 1, 10000, 10000),
        "txn_discount_bp": _int("limits", lim, "txn_discount_bp", 1, 10000, 10000),
        "txn_discount_rials": _int("limits", lim, "txn_discount_rials", 1, MAX_AMOUNT, MAX_AMOUNT),
        "member_daily_discount_rials": _int(
            "limits", lim, "member_daily_discount_rials", 1, MAX_AMOUNT, MAX_AMOUNT
        ),
        "member_daily_points": _int(
            "limits", lim, "member_daily_points", 1, MAX_POINTS, MAX_POINTS
        ),
    }
    pol = doc.get("policy", {})
    _check_fields("policy", pol, _POLICY_FIELDS)
    rs.policy = {
        # 0 = points never expire
        "points_expiry_days": _int("policy", pol, "points_expiry_days", 0, 36600, 365),
        # what a terminal may let a member spend beyond head office's last snapshot while
        # offline; head office accepts overdrafts up to these with a warning, beyond with
        # a critical alert, and never drops a paid sale
        "offline_points_limit": _int("policy", pol, "offline_points_limit", 0, MAX_POINTS, 0),
        "offline_wallet_limit": _int("policy", pol, "offline_wallet_limit", 0, MAX_AMOUNT, 0),
        # a refund of points or cashback the member already spent: withhold their value
        # from the money refunded ("deduct") or let the balance go below zero ("overdraft")
        "refund_clawback": pol.get("refund_clawback", "deduct"),
        # what a point is worth when it has to be paid back in money (0: it cannot be)
        "point_value_rials": _int("policy", pol, "point_value_rials", 0, 1000000000, 0),
        # head office's adjustments may take a balance below zero (1) or not (0)
        "adjust_overdraft": _int("policy", pol, "adjust_overdraft", 0, 1, 0),
        # points head office grants, once, when a referred member's first sale is booked:
        # to the member who referred them and to the new member (0: no referral programme)
        "referral_referrer_points": _int(
            "policy", pol, "referral_referrer_points", 0, MAX_POINTS, 0
        ),
        "referral_referee_points": _int("policy", pol, "referral_referee_points", 0, MAX_POINTS, 0),
    }
    if rs.policy["refund_clawback"] not in CLAWBACK:
        raise _fail("policy", "refund_clawback must be deduct or overdraft")
    groups = _compile_groups(doc)
    raw_rules = doc.get("rules", [])
    if type(raw_rules) is not list:
        raise _fail("bundle", "'rules' must be a list")
    rules = []
    for raw in raw_rules:
        r = _compile_rule(raw, tier_ids, groups)
        if r.id in rs.by_id:
            raise _fail(r.id, "duplicate rule id")
        rs.by_id[r.id] = r
        rules.append(r)
    rules.sort(key=lambda r: (r.phase, r.priority, r.id))
    for i in range(len(rules)):
        rules[i].ordinal = i
    rs.rules = rules
    _index(rs)
    return rs


def _index(rs):
    for r in rs.rules:
        if r.kind == "coupon":
            for code in r.p["codes"]:
                if code in rs.by_code:
                    raise _fail(
                        r.id, "coupon code %r is also in rule %s" % (code, rs.by_code[code].id)
                    )
                rs.by_code[code] = r
        elif r.kind == "redeem_points":
            if rs.redeem is None:
                rs.redeem = r
        elif r.kind == "wallet":
            if rs.wallet is None:
                rs.wallet = r
        elif r.scoped():
            if r.skus is not None:
                for s in sorted(r.skus):
                    rs.by_sku.setdefault(s, []).append(r)
            if r.categories is not None:
                for c in sorted(r.categories):
                    rs.by_category.setdefault(c, []).append(r)
        else:
            rs.unscoped.append(r)


class RuleBook:
    """The rule set in force.  A refused replacement leaves the current one in force."""

    def __init__(self, doc=None):
        self.current = None
        if doc is not None:
            self.replace(doc)

    def put(self, rs, allow_same=False):
        """Put the compiled rule set ``rs`` in force; RuleError (and no change) if refused.

        A rule set whose version is not newer than the one in force is refused (the
        same version too, unless ``allow_same``): a terminal never goes back to older
        rules.
        """
        cur = self.current
        if cur is not None:
            if rs.version < cur.version or (rs.version == cur.version and not allow_same):
                raise _fail(
                    "bundle",
                    "version %d is not newer than the rules in force (%d)"
                    % (rs.version, cur.version),
                )
        self.current = rs
        return rs

    def replace(self, doc, allow_same=False):
        """Compile the bundle document ``doc`` and :meth:`put` it in force."""
        return self.put(compile_rules(doc), allow_same)
