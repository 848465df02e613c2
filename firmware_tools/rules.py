"""Head office's rules bundles: a signing key, signing, checking, publishing, rotating.

A bundle is the rules document (docs/rules.md) signed with head office's Ed25519 key
(edge.protocol.bundles: COSE_Sign1, kid ``rules:{tenant}``).  Terminals pin the public
key at ``init`` and accept only newer versions; ``publish`` keeps head office to the
same rule: it reads the bundle retained on ``loyalty/v1/{tenant}/rules`` first and
publishes (retained, QoS 1) only a strictly newer version.

The key is rotated without visiting terminals (docs/protocol.md, "Rotating the rules
key"): the key in force ``endorse``s the next one, and ``publish-keys`` keeps the whole
chain of endorsements retained on ``loyalty/v1/{tenant}/rules_keys``.  ``publish`` checks
bundles as a terminal will: with ``--pub`` (the key terminals were provisioned with) and
the keys the retained endorsements add to it.

    python -m firmware_tools rules keygen --key ho-rules.key --pub rules.pub.pem
    python -m firmware_tools rules sign rules.json --key ho-rules.key --out rules.bundle
    python -m firmware_tools rules verify rules.bundle --pub rules.pub.pem
    python -m firmware_tools rules publish rules.bundle --pub rules.pub.pem --broker URL
    python -m firmware_tools rules endorse --key ho-rules.key --new-pub ho-rules-2.pub.pem \
        --number 2 --tenant T --out key-2.endorsement
    python -m firmware_tools rules publish-keys key-2.endorsement ... --broker URL --tenant T
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.core.errors import RuleError
from edge.core.ruleset import RuleSet
from edge.errors import ConfigError, DecodeError, SignatureError
from edge.protocol import bundles, cose, keys, topics
from edge.protocol.mqtt import BrokerConfig
from firmware_tools.device import destroy, read_file, write_file
from firmware_tools.mqttio import Session
from firmware_tools.ui import Out, RefusedError, dev


@dataclass(frozen=True, slots=True)
class Summary:
    tenant: str
    version: int
    rules: int
    tiers: int


def summary(rs: RuleSet) -> Summary:
    return Summary(rs.tenant, rs.version, len(rs.rules), len(rs.tiers))


def keygen(key_path: Path, pub_path: Path, out: Out) -> None:
    key = keys.generate(key_path)
    try:
        write_file(pub_path, keys.public_pem(key).encode())
    except BaseException:
        destroy(key_path)  # a key without its public half would only be left lying around
        raise
    out.say(
        f"head office rules key written to {key_path} (mode 0600; keep it offline), public key "
        f"to {pub_path}: give that to technicians for init --rules-key",
        f"کلید قوانین دفتر مرکزی در {key_path} (دسترسی 0600؛ آن را آفلاین نگه دارید) و کلید "
        f"عمومی در {pub_path} نوشته شد: آن را برای init --rules-key به تکنسین‌ها بدهید",
    )


def _refused(e: Exception, what: str, what_fa: str) -> RefusedError:
    fa = getattr(e, "fa", None) or str(e)
    return RefusedError(f"{what}: {e}", f"{what_fa}: {fa}", getattr(e, "code", "refused"))


def sign(doc_path: Path, key_path: Path, out_path: Path, out: Out) -> Summary:
    key = keys.load_private(key_path)
    try:
        doc = json.loads(read_file(doc_path, "rules").decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(str(doc_path), f"not a JSON rules document: {e}") from None
    if not isinstance(doc, dict):
        raise ConfigError(str(doc_path), "a rules document is a JSON object")
    try:
        raw = bundles.sign(doc, key)
        rs = bundles.open_bundle(raw, key.public_key())
    except (RuleError, DecodeError) as e:
        raise _refused(e, "the rules document is invalid", "سند قوانین نامعتبر است") from None
    write_file(out_path, raw)
    s = summary(rs)
    out.say(
        f"signed {s.tenant} rules version {s.version} ({s.rules} rules, {s.tiers} tiers, "
        f"{len(raw)} bytes) into {out_path}",
        f"قوانین {s.tenant} نسخهٔ {s.version} ({s.rules} قانون، {s.tiers} سطح، {len(raw)} بایت) "
        f"امضا و در {out_path} نوشته شد",
    )
    return s


def open_file(
    bundle_path: Path, pub_path: Path, tenant: str | None = None
) -> tuple[bytes, RuleSet, Ed25519PublicKey]:
    """The bundle's bytes, its rules, and the public key they verified with."""
    raw = read_file(bundle_path, "bundle")
    pinned = keys.public_from_pem(read_file(pub_path, "--pub"))
    try:
        return raw, bundles.open_bundle(raw, pinned, tenant), pinned
    except (SignatureError, DecodeError, RuleError) as e:
        raise _refused(
            e,
            f"{bundle_path} does not verify with {pub_path}",
            f"{bundle_path} با کلید {pub_path} تأیید نشد",
        ) from None


def verify(bundle_path: Path, pub_path: Path, out: Out, tenant: str | None = None) -> Summary:
    _raw, rs, _pinned = open_file(bundle_path, pub_path, tenant)
    s = summary(rs)
    out.say(
        f"valid: {s.tenant} rules version {s.version}, {s.rules} rules, {s.tiers} tiers, "
        f"signed with the key in {pub_path}",
        f"معتبر: قوانین {s.tenant} نسخهٔ {s.version}، {s.rules} قانون، {s.tiers} سطح، امضاشده با "
        f"کلید {pub_path}",
    )
    return s


def _subscribe(s: Session, topic: str) -> None:
    code = s.subscribe(topic)
    if code >= 0x80:
        raise RefusedError(
            f"the broker does not let this identity read {topic} (reason 0x{code:02X})",
            f"کارگزار اجازهٔ خواندن {topic} را به این هویت نمی‌دهد (کد 0x{code:02X})",
            "acl",
        )


def _retained(s: Session, wanted: tuple[str, ...], settle: float) -> dict[str, bytes]:
    """The messages retained on ``wanted`` that the broker sends within ``settle`` s."""
    got: dict[str, bytes] = {}
    deadline = time.monotonic() + settle
    while len(got) < len(wanted):
        m = s.wait_for(
            lambda m: m.retain and m.topic in wanted and m.topic not in got,
            deadline - time.monotonic(),
        )
        if m is None:
            break
        if m.payload:
            got[m.topic] = m.payload
    return got


def _bundle_tenant(raw: bytes, bundle_path: Path) -> str:
    """The tenant a bundle's kid names, to know where to look (not yet verified)."""
    try:
        kid = cose.parse(raw, max_size=bundles.MAX_BUNDLE).kid
        if not kid.startswith(b"rules:"):
            raise SignatureError("bad_kid", f"kid {dev(kid)} is not rules:{{tenant}}")
        return topics.check_id(kid.removeprefix(b"rules:").decode("ascii", "replace"), "kid")
    except (SignatureError, DecodeError, ConfigError) as e:
        raise _refused(
            e, f"{bundle_path} is not a rules bundle", f"{bundle_path} بستهٔ قوانین نیست"
        ) from None


def _ring(pinned: Ed25519PublicKey, keys_msg: bytes | None, tenant: str) -> bundles.KeyRing:
    """The ring a terminal provisioned with ``pinned`` holds once it has read ``keys_msg``
    (what it cannot read or verify, it ignores, and so does this)."""
    ring = bundles.KeyRing.pinned(pinned)
    if keys_msg is not None:
        with contextlib.suppress(DecodeError):  # a terminal ignores it too
            ring.extend(bundles.decode_endorsements(keys_msg), tenant)
    return ring


def publish(
    bundle_path: Path,
    pub_path: Path,
    broker: BrokerConfig,
    out: Out,
    *,
    timeout: float = 10.0,
    settle: float = 1.0,
    client_id: str = "loyalty-rules-publisher",
) -> Summary:
    """Publish the bundle retained, only if it is newer than the one retained now and a
    terminal that holds the retained one would accept it."""
    raw = read_file(bundle_path, "bundle")
    pinned = keys.public_from_pem(read_file(pub_path, "--pub"))
    tenant = _bundle_tenant(raw, bundle_path)
    topic, keys_topic = topics.rules(tenant), topics.rules_keys(tenant)
    with Session(broker, client_id, timeout=timeout) as s:
        _subscribe(s, topic)
        _subscribe(s, keys_topic)
        retained = _retained(s, (topic, keys_topic), settle)
        ring = _ring(pinned, retained.get(keys_topic), tenant)
        try:
            rs, number = bundles.open_bundle(raw, ring, tenant)
        except (SignatureError, DecodeError, RuleError) as e:
            raise _refused(
                e,
                f"{bundle_path} does not verify with {pub_path} or the keys endorsed on "
                f"{keys_topic}",
                f"{bundle_path} با کلید {pub_path} یا کلیدهای تأییدشده روی {keys_topic} تأیید نشد",
            ) from None
        current = retained.get(topic)
        if current is not None:
            try:
                cur, cur_number = bundles.open_bundle(current, ring, tenant)
            except (SignatureError, DecodeError, RuleError) as e:
                raise _refused(
                    e,
                    f"the bundle retained on {topic} does not verify with {pub_path}; not "
                    "replacing what cannot be checked",
                    f"بستهٔ نگه‌داشته روی {topic} با {pub_path} تأیید نشد؛ چیزی که بررسی‌پذیر "
                    "نیست جایگزین نمی‌شود",
                ) from None
            if rs.version <= cur.version:
                raise RefusedError(
                    f"{topic} already carries version {cur.version}; version {rs.version} is not "
                    "newer, and terminals never go back: sign a higher version",
                    f"روی {topic} نسخهٔ {cur.version} هست؛ نسخهٔ {rs.version} تازه‌تر نیست و "
                    "پایانه‌ها هرگز به عقب برنمی‌گردند: نسخهٔ بالاتری امضا کنید",
                    "not_newer",
                )
            if number < cur_number:
                raise RefusedError(
                    f"version {rs.version} is signed with rules key {number}, but version "
                    f"{cur.version} on {topic} is signed with key {cur_number}: terminals that "
                    f"installed it retired key {number}; sign with key {cur_number} or newer",
                    f"نسخهٔ {rs.version} با کلید قوانین {number} امضا شده، ولی نسخهٔ {cur.version} "
                    f"روی {topic} با کلید {cur_number}: پایانه‌هایی که آن را نصب کرده‌اند کلید "
                    f"{number} را کنار گذاشته‌اند؛ با کلید {cur_number} یا تازه‌تر امضا کنید",
                    "retired_key",
                )
            before, before_fa = f"replacing version {cur.version}", f"به جای نسخهٔ {cur.version}"
        else:
            before, before_fa = "nothing was published before", "پیش از این چیزی منتشر نشده بود"
        s.publish(topic, raw, retain=True)
    out.say(
        f"published {rs.tenant} rules version {rs.version} (rules key {number}) on {topic} "
        f"(retained; {before})",
        f"قوانین {rs.tenant} نسخهٔ {rs.version} (کلید قوانین {number}) روی {topic} منتشر شد "
        f"(ماندگار؛ {before_fa})",
    )
    return summary(rs)


# -- rotating the rules key ----------------------------------------------------------------


def endorse(
    key_path: Path, new_pub_path: Path, number: int, tenant: str, out_path: Path, out: Out
) -> None:
    """The key in force (``key_path``) endorses the next one as key ``number``."""
    topics.check_id(tenant, "--tenant")
    key = keys.load_private(key_path)
    new = keys.public_from_pem(read_file(new_pub_path, "--new-pub"))
    raw = bundles.endorse(new, number, key, tenant)
    write_file(out_path, raw)
    out.say(
        f"{key_path} endorses {new_pub_path} as {tenant} rules key {number}: written to "
        f"{out_path}; publish it with every earlier endorsement (rules publish-keys), then "
        f"sign bundles with the new key",
        f"{key_path} کلید {new_pub_path} را به عنوان کلید قوانین {number} {tenant} تأیید کرد: در "
        f"{out_path} نوشته شد؛ آن را همراه همهٔ تأییدهای پیشین منتشر کنید (rules publish-keys) و "
        f"سپس بسته‌ها را با کلید تازه امضا کنید",
    )


def _chain(files: list[Path], tenant: str, pub_path: Path | None) -> list[bytes]:
    """The endorsements in ``files``, checked as one chain: for ``tenant``, numbers rising,
    each signed by the key before it (from ``pub_path``, if given, for the first)."""
    raws = [read_file(p, "endorsement") for p in files]
    ring: bundles.KeyRing | None = None
    if pub_path is not None:
        ring = bundles.KeyRing.pinned(keys.public_from_pem(read_file(pub_path, "--pub")))
    for path, raw in zip(files, raws, strict=True):
        try:
            e = bundles.parse_endorsement(raw, tenant)
            if ring is None:  # nothing to check the first one against
                ring = bundles.KeyRing([(e.number, e.public)])
            elif not ring.add(raw, tenant):
                raise SignatureError(
                    "repeated", f"key {e.number} is already in the chain (--pub or an earlier file)"
                )
        except (SignatureError, DecodeError, ConfigError) as e:
            raise _refused(
                e,
                f"{path} does not continue the chain of {tenant} rules keys",
                f"{path} زنجیرهٔ کلیدهای قوانین {tenant} را ادامه نمی‌دهد",
            ) from None
    return raws


def publish_keys(
    files: list[Path],
    broker: BrokerConfig,
    tenant: str,
    out: Out,
    *,
    pub_path: Path | None = None,
    timeout: float = 10.0,
    settle: float = 1.0,
    client_id: str = "loyalty-rules-publisher",
) -> int:
    """Publish the chain of endorsements retained; it must keep every endorsement
    retained now, in order (a terminal offline since needs each of them).  Returns how
    many the retained message holds."""
    topics.check_id(tenant, "--tenant")
    if not files:
        raise ConfigError("rules publish-keys", "name the endorsement files, oldest first")
    chain = _chain(files, tenant, pub_path)
    msg = bundles.encode_endorsements(chain)
    topic = topics.rules_keys(tenant)
    with Session(broker, client_id, timeout=timeout) as s:
        _subscribe(s, topic)
        current = _retained(s, (topic,), settle).get(topic)
        if current is not None:
            try:
                held = bundles.decode_endorsements(current)
            except DecodeError as e:
                raise _refused(
                    e,
                    f"the message retained on {topic} cannot be read; not replacing what cannot "
                    "be checked",
                    f"پیام نگه‌داشته روی {topic} خوانا نیست؛ چیزی که بررسی‌پذیر نیست جایگزین نمی‌شود",
                ) from None
            if held == chain:
                out.say(
                    f"{topic} already carries these {len(chain)} endorsements: nothing to do",
                    f"روی {topic} همین {len(chain)} تأیید هست: کاری لازم نیست",
                )
                return len(chain)
            if chain[: len(held)] != held:
                raise RefusedError(
                    f"{topic} carries {len(held)} endorsements that this list does not begin "
                    "with: a terminal offline since needs every one of them; list them first, "
                    "in order, then the new ones",
                    f"روی {topic} {len(held)} تأیید هست که این فهرست با آن‌ها آغاز نمی‌شود: "
                    "پایانه‌ای که از آن زمان آفلاین بوده به همهٔ آن‌ها نیاز دارد؛ نخست آن‌ها را به "
                    "ترتیب و سپس تأییدهای تازه را بیاورید",
                    "not_extending",
                )
            before, before_fa = f"replacing {len(held)}", f"به جای {len(held)} تأیید"
        else:
            before, before_fa = "nothing was published before", "پیش از این چیزی منتشر نشده بود"
        s.publish(topic, msg, retain=True)
    newest = bundles.parse_endorsement(chain[-1]).number
    out.say(
        f"published {len(chain)} {tenant} rules key endorsements (newest: key {newest}) on "
        f"{topic} (retained; {before})",
        f"{len(chain)} تأیید کلید قوانین {tenant} (تازه‌ترین: کلید {newest}) روی {topic} منتشر "
        f"شد (ماندگار؛ {before_fa})",
    )
    return len(chain)
