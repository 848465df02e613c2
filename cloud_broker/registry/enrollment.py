"""Head office's side of provisioning: one-time enrollment tokens and the answers to
enroll, rotate and decommission requests (edge.protocol.provisioning).

Tokens are 120 random bits shown once as ``ABCD-EFGH-IJKL-MNOP-QRST-UVWX`` (base32;
dashes, spaces, lower case and Persian digits are forgiven when typed).  Only a SHA-256
hash is stored, with the tenant, the store, optionally the one device id it may enroll,
and an expiry.  A request is answered in one ledger transaction: the token is checked
and marked used, and the device registered, together, so a token works once even with
several reconcilers on one PostgreSQL.

The service (cloud_broker.reconcile.service) calls :func:`handle` for every message on
``loyalty/v1/+/enroll/+`` and publishes the reply it returns.  Refusals that look like
an attack (a bad signature, an unknown or reused token, a request on another device's
topic) are also ``security_events`` rows.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import secrets
import time
from collections.abc import Callable

from cloud_broker.ledger import audit
from cloud_broker.ledger.db import Database, Tx
from cloud_broker.registry import devices as registry
from edge.errors import ConfigError, LoyaltyError, ProtocolError, SignatureError
from edge.protocol import topics
from edge.protocol.cose import Sign1
from edge.protocol.keys import public_from_raw
from edge.protocol.provisioning import Reply, Request, encode_reply, parse_request

log = logging.getLogger("cloud_broker.registry.enrollment")

TOKEN_BYTES = 15  # 120 bits: 24 base32 characters, no padding
MAX_SKEW_MS = 15 * 60 * 1000  # a request's clock may differ from head office's by this
DEFAULT_TTL = 24 * 3600
_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
_TTL = re.compile(r"^(\d+)\s*([smhd]?)$")


def now_ms() -> int:
    return int(time.time() * 1000)


def new_token() -> str:
    text = base64.b32encode(secrets.token_bytes(TOKEN_BYTES)).decode()
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def normalise_token(text: str) -> str:
    return "".join(c for c in text.translate(_DIGITS).upper() if c.isalnum())


def token_hash(text: str) -> bytes:
    return hashlib.sha256(b"loyalty-enroll-token:" + normalise_token(text).encode()).digest()


def parse_ttl(text: str) -> int:
    """``90s``, ``30m``, ``24h``, ``7d`` or plain seconds -> seconds."""
    m = _TTL.match(text.strip().lower())
    if m is None or int(m.group(1)) <= 0:
        raise ConfigError("ttl", f"use a positive duration like 90s, 30m, 24h or 7d, got {text!r}")
    return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def issue_token(
    db: Database,
    tenant: str,
    store: str,
    device: str | None = None,
    ttl: int = DEFAULT_TTL,
    now: int | None = None,
    by: str = "system",
) -> tuple[str, int]:
    """A new one-time token for ``tenant``/``store`` (and only ``device``, if given);
    returns (the token, its expiry in ms).  The token itself is not stored; issuing it is
    audited as done ``by``."""
    topics.check_id(tenant, "tenant")
    topics.check_id(store, "store")
    if device is not None:
        topics.check_id(device, "device")
    if ttl <= 0:
        raise ConfigError("ttl", "must be positive")
    token = new_token()
    t = now_ms() if now is None else now
    expires = t + ttl * 1000

    def issue(tx: Tx) -> None:
        registry.check_tenant(tx, tenant)  # a token that could never enroll is not issued
        tx.execute(
            "INSERT INTO enroll_tokens (token_hash, tenant, store, device, created_at, "
            "expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            (token_hash(token), tenant, store, device, t, expires),
        )
        audit.record(
            tx, by, "token.issue", f"store:{store}", {"device": device, "expires_at": expires}
        )

    db.run(issue)
    return token, expires


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(ms // 1000))


class RefusalError(LoyaltyError):
    """An enrolment, key rotation or decommission request head office refuses; ``code``
    goes back to the technician's tool, ``security`` makes it a security event."""

    def __init__(self, code: str, en: str, fa: str, security: bool = False) -> None:
        super().__init__(en, fa=fa)
        self.code, self.security = code, security


def handle(
    db: Database, topic: str, raw: bytes, now: int | None = None
) -> tuple[str, bytes] | None:
    """Answer one message from ``loyalty/v1/{tenant}/enroll/{device}``: the reply topic and
    payload to publish, or None for a message on another topic."""
    where = topics.parse_enroll(topic)
    if where is None:
        return None
    tenant, device = where
    reply_topic = topics.enroll_reply(tenant, device)
    t = now_ms() if now is None else now
    nonce = b"\0" * 16
    try:
        s, req = parse_request(raw)
        nonce = req.nonce
        if (req.tenant, req.device) != (tenant, device):
            raise RefusalError(
                "topic_mismatch",
                f"a request of {req.tenant}/{req.device} arrived on {tenant}/{device}'s topic",
                "درخواست روی موضوع (topic) دستگاه دیگری فرستاده شده است",
                security=True,
            )
        skew = req.time_ms - t
        if abs(skew) > MAX_SKEW_MS:
            mins = abs(skew) // 60000
            ahead = skew > 0
            raise RefusalError(
                "clock",
                f"the terminal's clock is {mins} minutes {'ahead of' if ahead else 'behind'} "
                "head office's; set the date and time and try again",
                f"ساعت پایانه {mins} دقیقه {'جلوتر' if ahead else 'عقب‌تر'} از دفتر مرکزی است؛ "
                "تاریخ و ساعت را درست کنید و دوباره تلاش کنید",
            )
        op: Callable[[Tx], Reply] = {
            "enroll": lambda tx: _enroll(tx, s, req, t),
            "rotate": lambda tx: _rotate(tx, s, req, t),
            "decommission": lambda tx: _decommission(tx, s, req, t),
        }[req.op]
        reply = db.run(lambda tx: _guarded(tx, op, req, t))
    except ProtocolError as e:
        reply = _reply_refused(
            nonce,
            RefusalError(
                "bad_request",
                f"head office could not read the request: {e}",
                f"دفتر مرکزی درخواست را نتوانست بخواند: {e.code}",
            ),
            t,
        )
    except RefusalError as r:  # refused before the transaction (topic, clock)
        refusal = r
        if refusal.security:
            db.run(lambda tx: _security_event(tx, t, device, None, "request_refused", refusal))
        reply = _reply_refused(nonce, refusal, t)
    except ConfigError as e:  # a concurrent request registered the same device first
        reply = _reply_refused(nonce, RefusalError("refused", str(e), str(e)), t)
    log.info(
        "provisioning request from %s/%s: %s (%s)",
        tenant,
        device,
        "ok" if reply.ok else "refused",
        reply.code,
    )
    return reply_topic, encode_reply(reply)


def _reply_refused(nonce: bytes, r: RefusalError, t: int) -> Reply:
    return Reply(nonce, False, r.code, r.en, r.fa, None, t)


def _guarded(tx: Tx, op: Callable[[Tx], Reply], req: Request, t: int) -> Reply:
    """Run ``op``; a refusal is answered (and, if suspicious, recorded) in the same
    transaction, which then commits nothing else."""
    try:
        return op(tx)
    except RefusalError as r:
        if r.security:
            _security_event(tx, t, req.device, req.seq, f"{req.op}_refused", r)
        return _reply_refused(req.nonce, r, t)


def _security_event(
    tx: Tx, t: int, device: str, seq: int | None, kind: str, r: RefusalError
) -> None:
    tx.execute(
        "INSERT INTO security_events (at, device, seq, kind, detail) VALUES (?, ?, ?, ?, ?)",
        (t, device, seq, kind, f"{r.code}: {r.en}"),
    )


def _bad(req: Request) -> RefusalError:
    return RefusalError(
        "bad_request",
        f"a {req.op} request without the fields it needs",
        f"درخواست {req.op} کامل نیست",
    )


def _key_in_force(info: registry.DeviceInfo, seq: int) -> bytes | None:
    """The raw public key head office uses for ``seq`` (the first key below seq 1)."""
    raw = None
    for from_seq, k in info.keys:
        if from_seq <= max(1, seq):
            raw = k
    return raw


def _verify(s: Sign1, key: bytes | None, req: Request) -> None:
    if key is None:
        raise RefusalError(
            "bad_signature",
            f"head office has no key for {req.device} to check this request with",
            f"دفتر مرکزی کلیدی برای بررسی امضای {req.device} ندارد",
            security=True,
        )
    try:
        s.verify(public_from_raw(key))
    except SignatureError:
        raise RefusalError(
            "bad_signature",
            f"the request's signature does not verify with {req.device}'s key",
            f"امضای درخواست با کلید {req.device} تأیید نشد",
            security=True,
        ) from None


def _enroll(tx: Tx, s: Sign1, req: Request, t: int) -> Reply:
    if req.token is None or req.public_key is None:
        raise _bad(req)
    _verify(s, req.public_key, req)  # proof of possession of the new key
    h = token_hash(req.token)
    row = tx.one(
        "SELECT tenant, store, device, expires_at, used_at, used_by FROM enroll_tokens "
        "WHERE token_hash = ?",
        (h,),
    )
    if row is None:
        raise RefusalError(
            "token_unknown",
            "head office does not know this token (mistyped?); check it or ask for a new one",
            "دفتر مرکزی این توکن را نمی‌شناسد (اشتباه تایپ شده؟)؛ آن را بررسی کنید یا "
            "توکن تازه بگیرید",
            security=True,
        )
    tenant, store, bound, expires, used_at, used_by = row
    if used_at is not None:
        info = registry.load(tx, req.device)
        if used_by == req.device and info is not None and info.keys[0][1] == req.public_key:
            return Reply(req.nonce, True, "enrolled", *_enrolled_text(req), None, t)
        raise RefusalError(
            "token_used",
            f"this token was already used on {_iso(int(used_at))}; a token works once, "
            "ask head office for a new one",
            f"این توکن پیش‌تر ({_iso(int(used_at))}) به کار رفته است؛ هر توکن یک بار "
            "کار می‌کند، از دفتر مرکزی توکن تازه بگیرید",
            security=True,
        )
    if int(expires) <= t:
        raise RefusalError(
            "token_expired",
            f"this token expired at {_iso(int(expires))}; ask head office for a new one",
            f"این توکن در {_iso(int(expires))} منقضی شده است؛ از دفتر مرکزی توکن تازه بگیرید",
        )
    if (tenant, store) != (req.tenant, req.store):
        raise RefusalError(
            "token_store",
            f"this token is for store {tenant}/{store}, not {req.tenant}/{req.store}",
            f"این توکن برای فروشگاه {tenant}/{store} است، نه {req.tenant}/{req.store}",
            security=True,
        )
    other = registry.other_tenant(tx, req.tenant)
    if other is not None:
        raise RefusalError(
            "tenant",
            f"this head office serves tenant {other}, not {req.tenant}",
            f"این دفتر مرکزی برای {other} است، نه {req.tenant}",
        )
    if bound is not None and bound != req.device:
        raise RefusalError(
            "token_device",
            f"this token is for device {bound}, not {req.device}",
            f"این توکن برای دستگاه {bound} است، نه {req.device}",
            security=True,
        )
    if registry.load(tx, req.device) is not None:
        raise RefusalError(
            "device_exists",
            f"{req.device} is already registered; use rotate-key on it, or decommission it "
            "and enroll under a new device id",
            f"{req.device} پیش‌تر ثبت شده است؛ کلید آن را با rotate-key عوض کنید یا آن را از "
            "رده خارج کنید و با شناسهٔ تازه ثبت کنید",
        )
    claimed = tx.one(
        "UPDATE enroll_tokens SET used_at = ?, used_by = ? WHERE token_hash = ? AND "
        "used_at IS NULL RETURNING token_hash",
        (t, req.device, h),
    )
    if claimed is None:
        raise RefusalError(
            "token_used",
            "this token was just used by another request; ask head office for a new one",
            "این توکن همین حالا با درخواست دیگری به کار رفت؛ توکن تازه بگیرید",
            security=True,
        )
    registry.register_tx(tx, req.device, req.tenant, req.store, req.public_key, by="enrollment")
    log.info("enrolled %s for %s/%s", req.device, req.tenant, req.store)
    return Reply(req.nonce, True, "enrolled", *_enrolled_text(req), None, t)


def _enrolled_text(req: Request) -> tuple[str, str]:
    return (
        f"head office registered {req.device} for {req.tenant}/{req.store}",
        f"دفتر مرکزی {req.device} را برای {req.tenant}/{req.store} ثبت کرد",
    )


def _device(tx: Tx, req: Request) -> registry.DeviceInfo:
    info = registry.load(tx, req.device)
    if info is None:
        raise RefusalError(
            "unknown_device",
            f"head office does not know {req.device}; enroll it first",
            f"دفتر مرکزی {req.device} را نمی‌شناسد؛ نخست آن را ثبت (enroll) کنید",
            security=True,
        )
    if (info.tenant, info.store) != (req.tenant, req.store):
        raise RefusalError(
            "device_mismatch",
            f"{req.device} is registered to {info.tenant}/{info.store}, not "
            f"{req.tenant}/{req.store}",
            f"{req.device} برای {info.tenant}/{info.store} ثبت شده است، نه "
            f"{req.tenant}/{req.store}",
            security=True,
        )
    return info


def _rotate(tx: Tx, s: Sign1, req: Request, t: int) -> Reply:
    if req.seq is None or req.public_key is None:
        raise _bad(req)
    info = _device(tx, req)
    # signed with the key in force just before the new one (so a request repeated after
    # a lost reply still verifies)
    _verify(s, _key_in_force(info, req.seq - 1), req)
    if info.status != "active":
        raise RefusalError(
            "device_revoked",
            f"{req.device} is revoked; its key cannot be rotated",
            f"{req.device} باطل شده است؛ کلید آن عوض نمی‌شود",
        )
    try:
        registry.rotate_key_tx(tx, req.device, req.public_key, req.seq)
    except ConfigError as e:
        raise RefusalError(
            "bad_seq",
            f"head office cannot rotate the key from seq {req.seq}: {e}",
            f"دفتر مرکزی نمی‌تواند کلید را از شمارهٔ {req.seq} عوض کند: {e}",
        ) from None
    log.info("rotated the key of %s from seq %d", req.device, req.seq)
    return Reply(
        req.nonce,
        True,
        "rotated",
        f"head office accepts {req.device}'s new key from seq {req.seq} on",
        f"دفتر مرکزی کلید تازهٔ {req.device} را از شمارهٔ {req.seq} به بعد می‌پذیرد",
        req.seq,
        t,
    )


def _decommission(tx: Tx, s: Sign1, req: Request, t: int) -> Reply:
    if req.seq is None:
        raise _bad(req)
    info = _device(tx, req)
    _verify(s, _key_in_force(info, req.seq + 1), req)  # the key of its next record
    if info.status != "active":
        if info.revoked_after_seq == req.seq:
            return _decommissioned(req, t)
        raise RefusalError(
            "device_revoked",
            f"{req.device} was already revoked (records after seq {info.revoked_after_seq} "
            "are refused)",
            f"{req.device} پیش‌تر باطل شده است (رکوردهای پس از شمارهٔ "
            f"{info.revoked_after_seq} پذیرفته نمی‌شوند)",
        )
    applied = int(tx.one("SELECT applied_through FROM devices WHERE device = ?", (req.device,))[0])
    if applied > req.seq:
        raise RefusalError(
            "bad_seq",
            f"head office has applied records up to seq {applied}, but the terminal says its "
            f"last is {req.seq}",
            f"دفتر مرکزی رکوردها را تا شمارهٔ {applied} پذیرفته است، ولی پایانه آخرین را "
            f"{req.seq} می‌داند",
            security=True,
        )
    registry.revoke_tx(
        tx, req.device, "decommissioned by a technician", after_seq=req.seq, by="technician"
    )
    log.info("decommissioned %s after seq %d", req.device, req.seq)
    return _decommissioned(req, t)


def _decommissioned(req: Request, t: int) -> Reply:
    return Reply(
        req.nonce,
        True,
        "decommissioned",
        f"head office revoked {req.device}: records after seq {req.seq} are refused",
        f"دفتر مرکزی {req.device} را باطل کرد: رکوردهای پس از شمارهٔ {req.seq} پذیرفته نمی‌شوند",
        req.seq,
        t,
    )
