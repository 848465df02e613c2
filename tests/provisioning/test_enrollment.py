"""Head office's answers to provisioning requests, on SQLite and PostgreSQL, and the
request/reply wire format, tokens, key files, the PKI and the broker configuration."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_broker.ledger.db import Database
from cloud_broker.ledger.schema import MIGRATIONS
from cloud_broker.registry import enrollment
from edge.errors import ConfigError, DecodeError, SignatureError
from edge.protocol import cbor, cose, keys, topics
from edge.protocol.provisioning import (
    Reply,
    Request,
    decode_reply,
    encode_reply,
    new_nonce,
    parse_request,
    sign_request,
)
from firmware_tools import brokerconf, device, pki

T, S, D = "hypershahr", "s1", "pos-1"


@pytest.fixture
def db(ledger_url: str) -> Database:
    d = Database(ledger_url)
    d.migrate(MIGRATIONS)
    return d


def now() -> int:
    return int(time.time() * 1000)


def ask(
    db: Database, req: Request, key: Ed25519PrivateKey, topic_device: str | None = None
) -> Reply:
    got = enrollment.handle(db, topics.enroll(req.tenant, topic_device or req.device),
                            sign_request(req, key))  # fmt: skip
    assert got is not None
    assert got[0] == topics.enroll_reply(req.tenant, topic_device or req.device)
    reply = decode_reply(got[1])
    assert reply.nonce == req.nonce
    return reply


def enroll_req(key: Ed25519PrivateKey, token: str, device: str = D, store: str = S) -> Request:
    return Request("enroll", T, store, device, now(), new_nonce(), keys.public_raw(key), token)


def events(db: Database) -> list[str]:
    return [str(r[0]).split(":")[0] for r in db.read("SELECT detail FROM security_events")]


def test_enroll_once_then_the_token_is_spent(db: Database) -> None:
    token, _ = enrollment.issue_token(db, T, S, ttl=600)
    assert db.read("SELECT COUNT(*) FROM enroll_tokens WHERE token_hash = ?",
                   (enrollment.token_hash(token),))[0][0] == 1  # fmt: skip
    k1, k2 = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    ok = ask(db, enroll_req(k1, token.lower().replace("-", " ")), k1)  # as typed
    assert ok.ok and ok.code == "enrolled" and "registered pos-1" in ok.en and ok.fa
    assert db.read("SELECT public_key FROM devices WHERE device = ?", (D,))[0][0] == (
        keys.public_raw(k1)
    )
    assert ask(db, enroll_req(k1, token), k1).ok  # the same device repeating: answered again
    r = ask(db, enroll_req(k2, token, "pos-2"), k2)
    assert not r.ok and r.code == "token_used" and "works once" in r.en
    assert db.read("SELECT COUNT(*) FROM devices WHERE device = 'pos-2'")[0][0] == 0
    assert events(db) == ["token_used"]


def test_enroll_refusals(db: Database) -> None:
    k = Ed25519PrivateKey.generate()
    expired, _ = enrollment.issue_token(db, T, S, ttl=1, now=now() - 5000)
    assert ask(db, enroll_req(k, expired), k).code == "token_expired"
    other_store, _ = enrollment.issue_token(db, T, "s2")
    assert ask(db, enroll_req(k, other_store), k).code == "token_store"
    bound, _ = enrollment.issue_token(db, T, S, device="pos-9")
    assert ask(db, enroll_req(k, bound), k).code == "token_device"
    assert ask(db, enroll_req(k, "NOPE-NOPE"), k).code == "token_unknown"
    good, _ = enrollment.issue_token(db, T, S)
    # proof of possession: signed by another key than the one to register
    r = ask(db, enroll_req(k, good), Ed25519PrivateKey.generate())
    assert r.code == "bad_signature"
    # a clock far off is refused with a reason the technician can act on
    skewed = Request("enroll", T, S, D, now() - 3_600_000, new_nonce(), keys.public_raw(k), good)
    r = ask(db, skewed, k)
    assert r.code == "clock" and "60 minutes behind" in r.en
    # a request on another device's topic
    assert ask(db, enroll_req(k, good), k, topic_device="pos-5").code == "topic_mismatch"
    assert db.read("SELECT kind, device FROM security_events WHERE detail LIKE 'topic%'")[0] == (
        "request_refused",
        "pos-5",
    )  # fmt: skip
    # nothing was registered, the good token is still unused, and it works
    assert db.read("SELECT COUNT(*) FROM devices")[0][0] == 0
    assert ask(db, enroll_req(k, good), k).ok
    assert ask(db, enroll_req(k, good, "pos-1b"), k).code == "token_used"
    again, _ = enrollment.issue_token(db, T, S)
    assert ask(db, enroll_req(k, again), k).code == "device_exists"
    assert set(events(db)) >= {"token_store", "token_device", "token_unknown", "bad_signature"}


def test_malformed_requests_are_answered_not_crashed(db: Database) -> None:
    got = enrollment.handle(db, topics.enroll(T, D), b"\x00garbage")
    assert got is not None and decode_reply(got[1]).code == "bad_request"
    assert enrollment.handle(db, topics.records(T, S, D), b"") is None  # not ours


def test_rotate_and_decommission(db: Database) -> None:
    k0, k1, k2 = (Ed25519PrivateKey.generate() for _ in range(3))
    token, _ = enrollment.issue_token(db, T, S)
    assert ask(db, enroll_req(k0, token), k0).ok

    def rotate(new: Ed25519PrivateKey, seq: int, signer: Ed25519PrivateKey) -> Reply:
        req = Request("rotate", T, S, D, now(), new_nonce(), keys.public_raw(new), seq=seq)
        return ask(db, req, signer)

    assert rotate(k1, 5, k1).code == "bad_signature"  # must be signed with the current key
    r = rotate(k1, 5, k0)
    assert r.ok and r.seq == 5
    assert rotate(k1, 5, k0).ok  # repeated after a lost reply: same answer, no change
    assert rotate(k2, 4, k0).code == "bad_seq"  # behind the rotation already registered
    rows = db.read("SELECT from_seq, public_key FROM device_keys WHERE device = ? ORDER BY "
                   "from_seq", (D,))  # fmt: skip
    assert [(int(a), bytes(b)) for a, b in rows] == [
        (1, keys.public_raw(k0)),
        (5, keys.public_raw(k1)),
    ]
    db.run(lambda tx: tx.execute("UPDATE devices SET applied_through = 7 WHERE device = ?", (D,)))
    assert rotate(k2, 7, k1).code == "bad_seq"  # records up to 7 already applied

    def decommission(seq: int, signer: Ed25519PrivateKey) -> Reply:
        return ask(db, Request("decommission", T, S, D, now(), new_nonce(), seq=seq), signer)

    assert decommission(9, k0).code == "bad_signature"  # the key in force is k1 now
    assert decommission(6, k1).code == "bad_seq"  # head office has more than the device says
    r = decommission(9, k1)
    assert r.ok and r.seq == 9 and "after seq 9" in r.en
    assert db.read("SELECT status, revoked_after_seq FROM devices WHERE device = ?", (D,))[0] == (
        "revoked",
        9,
    )  # fmt: skip
    assert decommission(9, k1).ok  # repeated
    assert decommission(10, k1).code == "device_revoked"
    assert rotate(k2, 11, k1).code == "device_revoked"
    assert ask(db, Request("decommission", T, S, "pos-x", now(), new_nonce(), seq=0), k1).code == (
        "unknown_device"
    )  # fmt: skip


def test_wire_format_is_strict() -> None:
    k = Ed25519PrivateKey.generate()
    req = enroll_req(k, "TOKEN")
    raw = sign_request(req, k)
    s, back = parse_request(raw)
    assert back == req and s.kid == b"prov:pos-1"
    s.verify(k.public_key())
    with pytest.raises(DecodeError):  # a request is never a valid record (kid) and vice versa
        parse_request(cose.sign1(cbor.encode(req.payload()), k, b"pos-1"))
    bad = dict(req.payload())
    bad[9] = 3  # a seq on an enroll
    with pytest.raises(DecodeError):
        parse_request(cose.sign1(cbor.encode(bad), k, b"prov:pos-1"))
    with pytest.raises(DecodeError):  # the shapes are checked before signing, too
        sign_request(Request("rotate", T, S, D, 1, new_nonce(), keys.public_raw(k)), k)
    flipped = bytearray(raw)
    flipped[-1] ^= 1
    with pytest.raises(SignatureError):
        parse_request(bytes(flipped))[0].verify(k.public_key())
    reply = Reply(b"n" * 16, False, "token_used", "used", "به کار رفته", None, 123)
    assert decode_reply(encode_reply(reply)) == reply
    with pytest.raises(DecodeError):
        decode_reply(cbor.encode({0: 1, 1: b"n", 2: "maybe", 3: "", 4: "", 5: "", 7: 0}))


def test_tokens_and_durations() -> None:
    t = enrollment.new_token()
    assert len(t) == 29 and t.count("-") == 5
    assert enrollment.token_hash(t) == enrollment.token_hash(t.lower().replace("-", " "))
    assert enrollment.normalise_token("ab۲۳-cd") == "AB23CD"  # Persian digits typed
    assert [enrollment.parse_ttl(x) for x in ("90s", "30m", "24h", "7d", "60")] == [
        90, 1800, 86400, 604800, 60,
    ]  # fmt: skip
    for bad in ("0", "-5m", "1w", "soon"):
        with pytest.raises(ConfigError):
            enrollment.parse_ttl(bad)


def test_key_files_switch_and_destroy(tmp_path: Path) -> None:
    key = tmp_path / "device.key"
    old = keys.generate(key)
    new = keys.generate(device.new_key_path(key))
    device.switch_key(key)
    assert keys.public_raw(keys.load_private(key)) == keys.public_raw(new)
    assert keys.public_raw(keys.load_private(device.old_key_path(key))) == keys.public_raw(old)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert not device.new_key_path(key).exists()
    assert device.destroy(device.old_key_path(key)) and not device.old_key_path(key).exists()
    assert not device.destroy(device.old_key_path(key))


def test_pki_and_broker_config(tmp_path: Path) -> None:
    ca_key, ca = pki.make_ca()
    _k, cert = pki.issue(ca_key, ca, "pos-1")
    assert pki.common_name(cert) == "pos-1"
    pki.check_issued_by(cert, ca, "cert")
    _other_key, other = pki.make_ca("other")
    with pytest.raises(ConfigError):
        pki.check_issued_by(cert, other, "cert")
    pki.write_key(tmp_path / "k.key", _k)
    assert stat.S_IMODE((tmp_path / "k.key").stat().st_mode) == 0o600
    with pytest.raises(ConfigError):
        pki.write_key(tmp_path / "k.key", _k)  # never overwritten
    s = brokerconf.BrokerSettings(("t1", "t2"), "/ca.pem", "/b.pem", "/b.key", "/acl")
    acl = brokerconf.render_acl(s)
    assert "pattern write loyalty/v1/t2/records/+/%u" in acl
    assert "pattern read loyalty/v1/t1/enroll/%u/reply" in acl
    assert "persistence_location /var/lib/mosquitto/" in brokerconf.render_conf(s)
    for bad in (
        brokerconf.BrokerSettings(("t/#",), "/ca", "/c", "/k", "/acl"),
        brokerconf.BrokerSettings(("t",), "/ca", "/c", "/k", "/acl\ninclude_dir /"),
        brokerconf.BrokerSettings((), "/ca", "/c", "/k", "/acl"),
    ):
        with pytest.raises(ConfigError):
            brokerconf.render_conf(bad)
