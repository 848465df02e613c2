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

TYPES = ("sale", "refund", "void", "enroll", "adjustment", "heartbeat")
ZERO_HASH = b"\x00" * 32

# per-line figures, in line-map key order 4..9 (0..3 are sku, category, qty, unit price)
LINE_FIGURES = ("discount", "wallet", "paid", "points", "redeemed", "cashback")


def time_field(wall_ms, offset_min, mono_ms, boot):
    """Device time: wall clock (ms since the epoch, UTC offset in minutes) plus the
    monotonic clock (ms) and an 8-byte id of the boot that clock belongs to."""
    return {0: wall_ms, 1: offset_min, 2: mono_ms, 3: boot}


def member_field(how, ref):
    """How the customer identified ('phone', 'card', 'qr') and the reference
    (E.164 phone number or card id)."""
    if ref is None:
        return None
    return {0: how, 1: ref}


def bank_field(bank):
    """The bank terminal's reference for the payment, from a dict with the keys
    terminal_id, trace, receipt, amount, card_type, auth_code, result."""
    if bank is None:
        return None
    out = {}
    keys = ("terminal_id", "trace", "receipt", "amount", "card_type", "auth_code", "result")
    for i in range(len(keys)):
        v = bank.get(keys[i])
        if v is not None:
            out[i] = v
    return out


def _lines(lines, with_index):
    out = []
    for ln in lines:
        m = {0: ln.get("sku") or "", 1: ln.get("category") or "", 2: ln["qty"]}
        if "unit_price" in ln:
            m[3] = ln["unit_price"]
        for i in range(len(LINE_FIGURES)):
            m[4 + i] = ln[LINE_FIGURES[i]]
        if with_index:
            m[10] = ln["line"]
        out.append(m)
    return out


def _applied(applied):
    out = []
    for a in applied:
        m = {0: a["rule"], 1: a["kind"]}
        if a.get("discount"):
            m[2] = a["discount"]
        if a.get("points"):
            m[3] = a["points"]
        if a.get("wallet"):
            m[4] = a["wallet"]
        if a.get("coupon"):
            m[5] = a["coupon"]
        if a.get("birthday_year"):
            m[6] = a["birthday_year"]
        out.append(m)
    return out


def sale_body(quote):
    """The sale-specific fields of a payload, from an engine quote."""
    return {
        K_AMOUNTS: {
            0: quote["subtotal"],
            1: quote["discount"],
            2: quote["wallet_used"],
            3: quote["payable"],
        },
        K_LINES: _lines(quote["lines"], False),
        K_POINTS: {0: quote["points_earned"], 1: quote["points_redeemed"]},
        K_WALLET: {0: quote["wallet_used"], 1: quote["wallet_earned"]},
        K_RULES: quote["rules_version"],
        K_APPLIED: _applied(quote["applied"]),
    }


def refund_body(refund, orig_device, orig_seq, orig_hash):
    """The fields of a refund or void payload, from an engine refund quote.  What the
    member had already spent (``refund.settle_member``) travels as amounts.4 (Rials
    withheld from the refund), points.2 and wallet.2 (points and cashback not taken
    back), each only when not zero."""
    amounts = {
        0: refund["gross"],
        1: refund["discount"],
        2: refund["wallet_returned"],
        3: refund["refund_amount"],
    }
    points = {0: refund["points_reversed"], 1: refund["points_returned"]}
    wallet = {0: refund["wallet_returned"], 1: refund["wallet_reversed"]}
    if refund.get("withheld"):
        amounts[4] = refund["withheld"]
    if refund.get("points_forgiven"):
        points[2] = refund["points_forgiven"]
    if refund.get("wallet_forgiven"):
        wallet[2] = refund["wallet_forgiven"]
    return {
        K_AMOUNTS: amounts,
        K_LINES: _lines(refund["lines"], True),
        K_POINTS: points,
        K_WALLET: wallet,
        K_RULES: refund.get("rules_version") or 0,
        K_ORIG: {0: orig_device, 1: orig_seq, 2: orig_hash},
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
