"""Head office's rules bundles: a signing key, signing, checking, publishing.

A bundle is the rules document (docs/rules.md) signed with head office's Ed25519 key
(edge.protocol.bundles: COSE_Sign1, kid ``rules:{tenant}``).  Terminals pin the public
key at ``init`` and accept only newer versions; ``publish`` keeps head office to the
same rule: it reads the bundle retained on ``loyalty/v1/{tenant}/rules`` first and
publishes (retained, QoS 1) only a strictly newer version.

    python -m firmware_tools rules keygen --key ho-rules.key --pub rules.pub.pem
    python -m firmware_tools rules sign rules.json --key ho-rules.key --out rules.bundle
    python -m firmware_tools rules verify rules.bundle --pub rules.pub.pem
    python -m firmware_tools rules publish rules.bundle --pub rules.pub.pem --broker URL
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.core.errors import RuleError
from edge.core.ruleset import RuleSet
from edge.errors import ConfigError, DecodeError, SignatureError
from edge.protocol import bundles, keys, topics
from edge.protocol.mqtt import BrokerConfig
from firmware_tools.device import destroy, read_file, write_file
from firmware_tools.mqttio import Session
from firmware_tools.ui import Out, RefusedError


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
    """Publish the bundle retained, only if it is newer than the one retained now."""
    raw, rs, pinned = open_file(bundle_path, pub_path)
    topic = topics.rules(rs.tenant)
    with Session(broker, client_id, timeout=timeout) as s:
        code = s.subscribe(topic)
        if code >= 0x80:
            raise RefusedError(
                f"the broker does not let this identity read {topic} (reason 0x{code:02X})",
                f"کارگزار اجازهٔ خواندن {topic} را به این هویت نمی‌دهد (کد 0x{code:02X})",
                "acl",
            )
        current = s.wait_for(lambda m: m.topic == topic and m.retain, settle)
        if current is not None and current.payload:
            try:
                cur = bundles.open_bundle(current.payload, pinned, rs.tenant)
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
            before, before_fa = f"replacing version {cur.version}", f"به جای نسخهٔ {cur.version}"
        else:
            before, before_fa = "nothing was published before", "پیش از این چیزی منتشر نشده بود"
        s.publish(topic, raw, retain=True)
    out.say(
        f"published {rs.tenant} rules version {rs.version} on {topic} (retained; {before})",
        f"قوانین {rs.tenant} نسخهٔ {rs.version} روی {topic} منتشر شد (ماندگار؛ {before_fa})",
    )
    return summary(rs)
