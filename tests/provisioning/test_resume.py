"""``firmware_tools resume`` refuses every checkpoint it must refuse, and loses nothing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.clock import Clock
from edge.config import load
from edge.core import record as R
from edge.ledger_cache.outbox import Identity, Outbox
from edge.protocol import checkpoints, keys
from edge.protocol.record import Sealer
from firmware_tools.resume import resume
from firmware_tools.ui import Out, RefusedError

TOML = """
[device]
tenant = "hypershahr"
store = "s1"
id = "pos-1"
key = "device.key"
data_dir = "data"

[head_office]
rules_public_key = "rules.pub.pem"

[pos_api]
listen = "127.0.0.1:0"
"""


def _terminal(tmp: Path, ho: Ed25519PrivateKey) -> tuple[Path, Outbox]:
    key = keys.generate(tmp / "device.key")
    (tmp / "rules.pub.pem").write_text(keys.public_pem(ho))
    (tmp / "edge.toml").write_text(TOML)
    (tmp / "data").mkdir()
    ob = Outbox(
        tmp / "data" / "edge.db",
        Identity("hypershahr", "s1", "pos-1"),
        Sealer(key, "pos-1"),
        Clock(210),
    )
    return tmp / "edge.toml", ob


def _cp(applied: int, received: tuple[bytes, ...], device: str = "pos-1") -> checkpoints.Checkpoint:
    return checkpoints.Checkpoint(
        "hypershahr", "s1", device, applied, b"\x07" * 32, received, int(time.time() * 1000)
    )


def test_resume_refuses_what_it_must_and_then_continues_head_offices_chain(tmp_path: Path) -> None:
    ho = Ed25519PrivateKey.generate()
    cfg_path, ob = _terminal(tmp_path, ho)
    fork = [ob.commit("heartbeat", {R.K_EXTRA: {0: 0, 1: 0}}) for _ in range(2)]
    ob.set_conflict(5, b"\x07" * 32, "head office acknowledges seq 5", 0)
    ob.close()
    cfg = load(cfg_path)
    out = Out()
    f = tmp_path / "cp"

    def refused(cp_bytes: bytes, code: str) -> None:
        f.write_bytes(cp_bytes)
        with pytest.raises(RefusedError) as e:
            resume(cfg, f, out)
        assert e.value.code == code and e.value.fa

    everything = tuple(r.hash for r in fork)
    refused(checkpoints.sign(_cp(5, everything), Ed25519PrivateKey.generate()), "bad_checkpoint")
    refused(b"not a checkpoint at all", "bad_checkpoint")
    refused(checkpoints.sign(_cp(5, everything, "pos-2"), ho), "wrong_device")
    # one record made since the reinstall has not reached head office: it would be lost
    refused(checkpoints.sign(_cp(5, everything[:1]), ho), "records_not_received")
    f.write_bytes(checkpoints.sign(_cp(5, everything), ho))
    assert resume(cfg, f, out) == 6
    ob = Outbox(
        cfg.db_path,
        Identity("hypershahr", "s1", "pos-1"),
        Sealer(keys.load_private(cfg.key_file), "pos-1"),
        Clock(210),
    )
    assert ob.conflict is None and ob.status()["depth"] == 0
    nxt = ob.commit("heartbeat", {R.K_EXTRA: {0: 0, 1: 0}})
    assert nxt.seq == 6 and nxt.prev == b"\x07" * 32  # head office's chain, continued
    ob.close()
    # a second resume with the same checkpoint: nothing to resume
    refused(checkpoints.sign(_cp(5, everything), ho), "nothing_to_resume")
