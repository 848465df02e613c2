"""Record payloads: what a signed transaction record says (MicroPython subset).

A payload is a map with small integer keys (so cbor2's canonical order and RFC 8949
§4.2.1 agree); docs/protocol.md is the schema.  This module builds payloads from the
engine's quotes and refunds; signing, encoding with cbor2 and verifying live on the
CPython side (edge.protocol).
"""

SCHEMA = 1

# payload keys
K_V = 0
K_TYPE = 1
K_TENANT = 2
K_STORE = 3
K_DEVICE = 4
K_SEQ = 5
K_PREV = 6
K_TIME = 7
K_MEMBER = 8
K_AMOUNTS = 9
K_LINES = 10
K_POINTS = 11
K_WALLET = 12
K_RULES = 13
K_BANK = 14
K_OFFLINE = 15
K_ORIG = 16
K_APPLIED = 17
K_BASKET = 18
K_EXTRA = 19

# keys of the nested maps (docs/protocol.md, "Field names", lists the same)
# in the time map, under K_TIME
T_WALL = 0  # ms since the epoch, UTC
T_OFFSET = 1  # the UTC offset, minutes
T_MONO = 2  # the monotonic clock, ms
T_BOOT = 3  # 8-byte id of the boot the monotonic clock belongs to
# in the member map, under K_MEMBER
M_HOW = 0  # phone | card | qr
M_REF = 1  # E.164 phone number or card id
# in the amounts map, under K_AMOUNTS: a sale's, or what a refund or void gives back
A_GROSS = 0  # sale: subtotal; refund: gross value of the units returned
A_DISCOUNT = 1
A_WALLET = 2  # sale: wallet credit used; refund: wallet credit returned
A_PAID = 3  # sale: payable (charged); refund: money refunded
A_WITHHELD = 4  # refund only: kept back for points and cashback already spent
# in the points map, under K_POINTS
P_EARNED = 0  # sale: earned; refund: earned points taken back
P_REDEEMED = 1  # sale: redeemed; refund: redeemed points returned
P_FORGIVEN = 2  # refund only: earned points not taken back (paid by A_WITHHELD)
# in the wallet map, under K_WALLET
W_USED = 0  # sale: credit used; refund: credit returned
W_CASHBACK = 1  # sale: cashback earned; refund: cashback taken back
W_FORGIVEN = 2  # refund only: cashback not taken back
# in the lines map, under K_LINES, one map per line
L_SKU = 0
L_CATEGORY = 1
L_QTY = 2
L_UNIT_PRICE = 3
L_DISCOUNT = 4  # L_DISCOUNT..L_CASHBACK in the order of LINE_FIGURES
L_WALLET = 5
L_PAID = 6
L_POINTS = 7
L_REDEEMED = 8
L_CASHBACK = 9
L_LINE = 10  # refund and void only: the sale's line
# in the bank map, under K_BANK: the bank terminal's reference
B_TERMINAL = 0
B_TRACE = 1
B_RECEIPT = 2
B_AMOUNT = 3
B_CARD = 4
B_AUTH = 5
B_RESULT = 6
# in the orig map, under K_ORIG: the sale a refund or void refers to
O_DEVICE = 0
O_SEQ = 1
O_HASH = 2
# in the applied map, under K_APPLIED, one map per rule applied to a sale
AP_RULE = 0
AP_KIND = 1
AP_DISCOUNT = 2
AP_POINTS = 3
AP_WALLET = 4
AP_COUPON = 5
AP_BIRTHDAY = 6
AP_ANNIVERSARY = 7
# in the extra map, under K_EXTRA of an enroll, an adjustment, a heartbeat
EN_HOW = 0  # enroll: phone | card
EN_REF = 1  # enroll: the phone number or card id
EN_BIRTHDAY = 2  # enroll: YYYY-MM-DD, Jalali
EN_REFERRAL = 3  # enroll: the referral code of the member who referred the new one
ADJ_REASON = 0
ADJ_POINTS = 1
ADJ_WALLET = 2
HB_DEPTH = 0  # heartbeat: outbox depth
HB_APPLIED = 1  # heartbeat: applied_through

TYPES = ("sale", "refund", "void", "enroll", "adjustment", "heartbeat")
ZERO_HASH = b"\x00" * 32

# per-line figures, in line-map key order 4..9 (0..3 are sku, category, qty, unit price)
LINE_FIGURES = ("discount", "wallet", "paid", "points", "redeemed", "cashback")


def time_field(wall_ms, offset_min, mono_ms, boot):
    """Device time: wall clock (ms since the epoch, UTC offset in minutes) plus the
    monotonic clock (ms) and an 8-byte id of the boot that clock belongs to."""
    return {T_WALL: wall_ms, T_OFFSET: offset_min, T_MONO: mono_ms, T_BOOT: boot}


def member_field(how, ref):
    """How the customer identified ('phone', 'card', 'qr') and the reference
    (E.164 phone number or card id)."""
    if ref is None:
        return None
    return {M_HOW: how, M_REF: ref}


def bank_field(bank):
    """The bank terminal's reference for the payment, from a dict with the keys
    terminal_id, trace, receipt, amount, card_type, auth_code, result."""
    if bank is None:
        return None
    out = {}
    for i in range(len(BANK_NAMES)):
        v = bank.get(BANK_NAMES[i])
        if v is not None:
            out[i] = v
    return out


# the reference's names, in key order B_TERMINAL..B_RESULT
BANK_NAMES = ("terminal_id", "trace", "receipt", "amount", "card_type", "auth_code", "result")


def _lines(lines, with_index):
    out = []
    for ln in lines:
        m = {L_SKU: ln.get("sku") or "", L_CATEGORY: ln.get("category") or "", L_QTY: ln["qty"]}
        if "unit_price" in ln:
            m[L_UNIT_PRICE] = ln["unit_price"]
        for i in range(len(LINE_FIGURES)):
            m[L_DISCOUNT + i] = ln[LINE_FIGURES[i]]
        if with_index:
            m[L_LINE] = ln["line"]
        out.append(m)
    return out


def _applied(applied):
    out = []
    for a in applied:
        m = {AP_RULE: a["rule"], AP_KIND: a["kind"]}
        if a.get("discount"):
            m[AP_DISCOUNT] = a["discount"]
        if a.get("points"):
            m[AP_POINTS] = a["points"]
        if a.get("wallet"):
            m[AP_WALLET] = a["wallet"]
        if a.get("coupon"):
            m[AP_COUPON] = a["coupon"]
        if a.get("birthday_year"):
            m[AP_BIRTHDAY] = a["birthday_year"]
        if "anniversary_year" in a:
            m[AP_ANNIVERSARY] = a["anniversary_year"]
        out.append(m)
    return out


def sale_body(quote):
    """The sale-specific fields of a payload, from an engine quote."""
    return {
        K_AMOUNTS: {
            A_GROSS: quote["subtotal"],
            A_DISCOUNT: quote["discount"],
            A_WALLET: quote["wallet_used"],
            A_PAID: quote["payable"],
        },
        K_LINES: _lines(quote["lines"], False),
        K_POINTS: {P_EARNED: quote["points_earned"], P_REDEEMED: quote["points_redeemed"]},
        K_WALLET: {W_USED: quote["wallet_used"], W_CASHBACK: quote["wallet_earned"]},
        K_RULES: quote["rules_version"],
        K_APPLIED: _applied(quote["applied"]),
    }


def refund_body(refund, orig_device, orig_seq, orig_hash):
    """The fields of a refund or void payload, from an engine refund quote.  What the
    member had already spent (``refund.settle_member``) travels as amounts.4 (Rials
    withheld from the refund), points.2 and wallet.2 (points and cashback not taken
    back), each only when not zero."""
    amounts = {
        A_GROSS: refund["gross"],
        A_DISCOUNT: refund["discount"],
        A_WALLET: refund["wallet_returned"],
        A_PAID: refund["refund_amount"],
    }
    points = {P_EARNED: refund["points_reversed"], P_REDEEMED: refund["points_returned"]}
    wallet = {W_USED: refund["wallet_returned"], W_CASHBACK: refund["wallet_reversed"]}
    if refund.get("withheld"):
        amounts[A_WITHHELD] = refund["withheld"]
    if refund.get("points_forgiven"):
        points[P_FORGIVEN] = refund["points_forgiven"]
    if refund.get("wallet_forgiven"):
        wallet[W_FORGIVEN] = refund["wallet_forgiven"]
    return {
        K_AMOUNTS: amounts,
        K_LINES: _lines(refund["lines"], True),
        K_POINTS: points,
        K_WALLET: wallet,
        K_RULES: refund.get("rules_version") or 0,
        K_ORIG: {O_DEVICE: orig_device, O_SEQ: orig_seq, O_HASH: orig_hash},
    }


def build(
    kind,
    tenant,
    store,
    device,
    seq,
    prev,
    time,
    body,
    member=None,
    bank=None,
    offline=False,
    basket=None,
):
    """The whole payload map.  ``body`` holds the type-specific keys (sale_body,
    refund_body, or {K_EXTRA: ...} for enroll, adjustment and heartbeat)."""
    p = {
        K_V: SCHEMA,
        K_TYPE: kind,
        K_TENANT: tenant,
        K_STORE: store,
        K_DEVICE: device,
        K_SEQ: seq,
        K_PREV: prev,
        K_TIME: time,
        K_MEMBER: member,
        K_BANK: bank,
        K_OFFLINE: offline,
        K_BASKET: basket,
    }
    for k in body:
        p[k] = body[k]
    return p
