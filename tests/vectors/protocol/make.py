"""Write records.json (run by hand; review the diff before committing)."""

from __future__ import annotations

import json
from pathlib import Path

from edge.protocol import cbor, cose
from edge.protocol.keys import public_raw
from edge.protocol.record import record_hash
from tests.vectors.protocol import inputs

HERE = Path(__file__).resolve().parent


def build() -> dict[str, object]:
    k = inputs.key()
    hashes: list[bytes] = []
    recs = []
    for i in range(3):
        name, payload = inputs.payloads(hashes)[i]
        p = cbor.encode(payload)
        raw = cose.sign1(p, k, inputs.DEVICE.encode())
        hashes.append(record_hash(raw))
        recs.append(
            {
                "name": name,
                "payload_hex": p.hex(),
                "cose_hex": raw.hex(),
                "hash_hex": hashes[-1].hex(),
            }
        )
    sale = bytes.fromhex(str(recs[1]["cose_hex"]))
    flipped = bytearray(sale)
    flipped[40] ^= 0x01
    negative = [
        {
            "name": "flipped payload bit",
            "hex": flipped.hex(),
            "error": "SignatureError",
            "code": "bad_signature",
        },
        {
            "name": "trailing byte",
            "hex": sale.hex() + "00",
            "error": "DecodeError",
            "code": "trailing_bytes",
        },
        {
            "name": "untagged",
            "hex": sale[1:].hex(),
            "error": "SignatureError",
            "code": "not_cose_sign1",
        },
        {
            "name": "alg ES256 in the protected header",
            "hex": sale.replace(b"\x43\xa1\x01\x27", b"\x43\xa1\x01\x26", 1).hex(),
            "error": "SignatureError",
            "code": "bad_alg",
        },
    ]
    return {
        "key_seed_hex": inputs.SEED.hex(),
        "public_key_hex": public_raw(k).hex(),
        "device": inputs.DEVICE,
        "records": recs,
        "negative": negative,
    }


if __name__ == "__main__":
    HERE.joinpath("records.json").write_text(json.dumps(build(), indent=1) + "\n")
