"""``python -m firmware_tools resume``: a reinstalled terminal continues head office's chain.

A terminal reinstalled with its old key (or whose database was restored from an old copy)
writes records whose seqs head office already holds: the first ack it receives shows it,
and the agent stops recording club sales (edge.ledger_cache.outbox, ``chain_conflict``).
Head office issues a signed checkpoint (``python -m cloud_broker devices checkpoint``)
naming the last record it applied and every record of this device it holds outside the
chain; this command, with the agent stopped:

1. verifies the checkpoint against the rules key pinned at ``init`` and checks that it is
   this terminal's (tenant, store, device);
2. refuses if any record still in the outbox is not among those head office holds (it
   would be lost): start the agent online until head office has them, then ask for a new
   checkpoint;
3. continues the chain from the checkpoint: the next record is ``applied_through + 1``
   and follows the hash head office holds; the records head office holds are dropped from
   the outbox (head office admits them: ``cloud_broker quarantine admit``), with their
   local balance deltas (head office's next snapshot brings the balances back) and the
   sales kept for refunds at the till (those sales are refunded at head office);
4. lifts the stop: club sales are recorded again when the agent starts.
"""

from __future__ import annotations

from pathlib import Path

from edge.config import Config
from edge.errors import DecodeError, SignatureError
from edge.ledger_cache import db
from edge.ledger_cache.outbox import CONFLICT_KEY
from edge.protocol import checkpoints, keys
from firmware_tools.device import read_file, require_agent_stopped
from firmware_tools.ui import Out, RefusedError, dev


def resume(cfg: Config, checkpoint_file: Path, out: Out) -> int:
    """Returns the next seq the terminal will write."""
    require_agent_stopped(cfg)
    pinned = keys.public_from_pem(read_file(cfg.rules_key_file, "rules key"))
    try:
        cp = checkpoints.open_checkpoint(read_file(checkpoint_file, "checkpoint"), pinned)
    except (SignatureError, DecodeError) as e:
        raise RefusedError(
            f"the checkpoint is not one head office signed: {e}",
            f"نقطه بازیابی امضای معتبر دفتر مرکزی را ندارد: {e}",
            "bad_checkpoint",
        ) from e
    if (cp.tenant, cp.store, cp.device) != (cfg.tenant, cfg.store, cfg.device):
        raise RefusedError(
            f"the checkpoint is for {dev(cp.tenant)}/{dev(cp.store)}/{dev(cp.device)}, this "
            f"terminal is {cfg.tenant}/{cfg.store}/{cfg.device}",
            f"نقطه بازیابی برای دستگاه دیگری است ({dev(cp.device)})",
            "wrong_device",
        )
    conn = db.connect(cfg.db_path)
    try:
        with db.transaction(conn):
            written = int(conn.execute("SELECT next_seq - 1 FROM device").fetchone()[0])
            forked = conn.execute("SELECT 1 FROM kv WHERE key = ?", (CONFLICT_KEY,)).fetchone()
            if forked is None and written >= cp.applied_through:
                raise RefusedError(
                    f"this terminal's chain is not behind head office's (it wrote {written}, "
                    f"head office applied {cp.applied_through}): nothing to resume",
                    "زنجیره این پایانه از دفتر مرکزی عقب نیست؛ بازیابی لازم نیست",
                    "nothing_to_resume",
                )
            held = set(cp.received)
            rows = conn.execute("SELECT seq, hash FROM outbox ORDER BY seq").fetchall()
            missing = [int(s) for s, h in rows if bytes(h) not in held]
            if missing:
                raise RefusedError(
                    f"{len(missing)} records written since the reinstall (seq "
                    f"{missing[0]}..{missing[-1]}) have not reached head office; they may be "
                    "paid sales: start the agent with its network until head office has "
                    "them, then ask head office for a new checkpoint",
                    f"{len(missing)} رکورد پس از نصب دوباره هنوز به دفتر مرکزی نرسیده است؛ "
                    "عامل را با اتصال شبکه اجرا کنید و نقطه بازیابی تازه بگیرید",
                    "records_not_received",
                )
            hashes = [bytes(h) for _s, h in rows]
            conn.execute("DELETE FROM outbox")
            conn.execute("DELETE FROM member_delta")
            conn.executemany("DELETE FROM sales WHERE hash = ?", [(h,) for h in hashes])
            conn.execute(
                "UPDATE device SET next_seq = ?, last_hash = ?, applied_through = ?, "
                "applied_hash = ?, outbox_rows = 0, outbox_bytes = 0",
                (cp.applied_through + 1, cp.last_hash, cp.applied_through, cp.last_hash),
            )
            conn.execute("DELETE FROM kv WHERE key = ?", (CONFLICT_KEY,))
    finally:
        conn.close()
    out.say(
        f"resumed: the next record is seq {cp.applied_through + 1}, following head office's "
        f"chain; {len(hashes)} records made since the reinstall are at head office, to be "
        "admitted there (cloud_broker quarantine admit); start the agent",
        f"بازیابی انجام شد: رکورد بعدی شماره {cp.applied_through + 1} است؛ {len(hashes)} "
        "رکورد پس از نصب دوباره در دفتر مرکزی است و آنجا پذیرفته می‌شود؛ عامل را اجرا کنید",
    )
    return cp.applied_through + 1
