"""Screening in worker processes: decode, validate, look up and verify, off the main
process, which then only applies verified records to the ledger.

The stateless half of reconciliation (strict decoding, the schema, topic and registry
checks, Ed25519) costs more CPU than the ledger transaction, and in one process it would
share one interpreter lock with paho and the database work.  Worker processes run it in
parallel with the main process's commits; each has its own database connection for
registry look-ups (read-only) and returns small tuples: the record's hash for a verified
record, the refusal otherwise.  The main process rebuilds the payload from the raw
bytes it already holds.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

import cbor2

from cloud_broker.ledger.db import Database
from cloud_broker.reconcile.reconciler import Incoming, Reconciler, Screened, _Refused, _Verified
from edge.core.ruleset import RuleSet
from edge.protocol import cose
from edge.protocol.record import Record

_worker: Reconciler | None = None


def _init(ledger_url: str, rules_doc: dict[str, Any]) -> None:
    global _worker  # noqa: PLW0603 - one reconciler per worker process
    from edge.core.ruleset import compile_rules  # noqa: PLC0415

    _worker = Reconciler(Database(ledger_url), compile_rules(rules_doc), verify_threads=1)
    parent = os.getppid()

    def watch() -> None:  # a SIGKILLed service must not leave its workers behind
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _screen(items: list[tuple[str, bytes]]) -> list[tuple[Any, ...]]:
    assert _worker is not None
    s = _worker.screen([Incoming(t, r, i) for i, (t, r) in enumerate(items)])
    out: list[tuple[Any, ...]] = [("ok", v.msg.token, v.rec.hash) for v in s.verified]
    out += [("no", r.msg.token, r.device, r.seq, r.code, r.reason, r.security) for r in s.refused]
    return out


class ProcessScreener:
    """A pool of screening processes (spawned, so they never inherit paho's threads)."""

    def __init__(self, ledger_url: str, rs: RuleSet, workers: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pool = ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_init, initargs=(ledger_url, rs.doc)
        )
        self.workers = workers
        self.submit([]).result()  # start the workers now, not on the first records

    def submit(self, batch: list[Incoming]) -> Future[list[tuple[Any, ...]]]:
        return self.pool.submit(_screen, [(m.topic, m.raw) for m in batch])

    @staticmethod
    def collect(batch: list[Incoming], result: list[tuple[Any, ...]]) -> Screened:
        verified: list[_Verified] = []
        refused: list[_Refused] = []
        for item in result:
            msg = batch[item[1]]
            if item[0] == "ok":
                payload = cbor2.loads(cose.parse(msg.raw).payload)  # validated by the worker
                verified.append(_Verified(msg, Record(msg.raw, item[2], payload)))
            else:
                refused.append(_Refused(msg, item[2], item[3], item[4], item[5], item[6]))
        return Screened(verified, refused)

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)
