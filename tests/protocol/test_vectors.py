"""The byte-exact protocol vectors of docs/protocol.md."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

import pytest

from edge.core import record as R
from edge.errors import DecodeError, RecordError, SignatureError
from edge.protocol import cbor, cose
from edge.protocol.keys import public_from_raw, public_raw
from edge.protocol.record import open_record, record_hash
from tests.conftest import ROOT, run_py
from tests.protocol.test_record import cwt_verifies, pycose_verifies
from tests.vectors.protocol import inputs

VECTORS = json.loads((ROOT / "tests/vectors/protocol/records.json").read_text())
ERRORS = {"DecodeError": DecodeError, "RecordError": RecordError, "SignatureError": SignatureError}


def _payloads() -> list[tuple[str, dict[int, Any]]]:
    hashes = [bytes.fromhex(r["hash_hex"]) for r in VECTORS["records"]]
    return inputs.payloads(hashes[:2])


def test_key_is_rfc8032_test_1() -> None:
    assert public_raw(inputs.key()).hex() == (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    )
    assert VECTORS["public_key_hex"] == public_raw(inputs.key()).hex()


@pytest.mark.parametrize("i", range(3))
def test_records_are_rebuilt_byte_for_byte(i: int) -> None:
    v = VECTORS["records"][i]
    name, payload = _payloads()[i]
    assert name == v["name"]
    p = cbor.encode(payload)
    assert p.hex() == v["payload_hex"]
    raw = cose.sign1(p, inputs.key(), inputs.DEVICE.encode())
    assert raw.hex() == v["cose_hex"]  # Ed25519 is deterministic
    assert record_hash(raw).hex() == v["hash_hex"]
    pub = bytes.fromhex(VECTORS["public_key_hex"])
    assert pycose_verifies(raw, pub)
    assert cwt_verifies(raw, pub, inputs.DEVICE.encode()) == p
    rec = open_record(raw, lambda _d: public_from_raw(pub))
    assert rec.payload == payload


def test_chain_links() -> None:
    recs = VECTORS["records"]
    for prev, cur in pairwise(recs):
        payload = cbor.decode(bytes.fromhex(cur["payload_hex"]))
        assert payload[R.K_PREV].hex() == prev["hash_hex"]


@pytest.mark.parametrize("v", VECTORS["negative"], ids=[v["name"] for v in VECTORS["negative"]])
def test_negative_vectors(v: dict[str, str]) -> None:
    pub = public_from_raw(bytes.fromhex(VECTORS["public_key_hex"]))
    with pytest.raises(ERRORS[v["error"]]) as info:
        open_record(bytes.fromhex(v["hex"]), lambda _d: pub)
    assert info.value.code == v["code"]


def _mp_request(i: int) -> dict[str, Any]:
    hashes = [r["hash_hex"] for r in VECTORS["records"]]
    t = inputs.time_at(i + 1)
    base = {
        "fn": "record",
        "tenant": inputs.TENANT,
        "store": inputs.STORE,
        "device": inputs.DEVICE,
        "seq": i + 1,
        "offline": False,
        "basket": None,
        "bank": None,
        "member": None,
        "prev": R.ZERO_HASH.hex() if i == 0 else hashes[i - 1],
        "time": [t[0], t[1], t[2], t[3].hex()],
    }
    if i == 0:
        return base | {"kind": "heartbeat", "body": {"extra": {"0": 0, "1": 0}}}
    if i == 1:
        return base | {
            "kind": "sale",
            "body": {"sale": inputs.SALE_QUOTE},
            "bank": inputs.BANK_INFO,
            "member": ["phone", inputs.PHONE],
            "basket": inputs.BASKET,
        }
    return base | {
        "kind": "refund",
        "member": ["phone", inputs.PHONE],
        "body": {"refund": [inputs.REFUND, inputs.DEVICE, 2, hashes[1]]},
    }


@pytest.mark.parametrize("interp", ["cpython", "micropython"])
def test_payload_building_is_byte_identical_on_both_interpreters(interp: str) -> None:
    reqs = "".join(json.dumps(_mp_request(i)) + "\n" for i in range(3)).encode()
    res = run_py(interp, ["tests/core/mp_harness.py"], reqs)
    assert res.returncode == 0, res.stderr.decode()
    got = [json.loads(line) for line in res.stdout.decode().splitlines()]
    assert got == [r["payload_hex"] for r in VECTORS["records"]]


def test_docs_show_the_checked_vectors() -> None:
    import textwrap

    doc = (ROOT / "docs" / "protocol.md").read_text("utf-8")
    for v in VECTORS["records"]:
        assert "\n".join(textwrap.wrap(v["cose_hex"], 96)) in doc, v["name"]
        assert v["hash_hex"] in doc
