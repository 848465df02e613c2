"""A stand-in for head office in the uplink tests: verifies, acks cumulatively, can
drop messages or ask for gaps.  (The real reconciler is cloud_broker.)"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.core import record as R
from edge.errors import ProtocolError
from edge.protocol import messages, topics
from edge.protocol.mqtt import BrokerConfig, connect, new_client
from edge.protocol.record import open_record
from tests.helpers.wait import until


@dataclass
class DeviceState:
    seen: dict[int, bytes] = field(default_factory=dict)  # seq -> hash
    prev: dict[int, bytes] = field(default_factory=dict)  # seq -> the prev it carries
    applied: int = 0
    deliveries: int = 0
    per_seq: dict[int, int] = field(default_factory=dict)
    chain_ok: bool = True


class Acker:
    def __init__(
        self,
        url: str,
        keys: dict[str, Ed25519PublicKey],
        tenant: str = "acme",
        drop: Callable[[str, int, int], bool] | None = None,  # device, seq, nth
        ask_gaps: bool = True,
    ) -> None:
        self.keys = keys
        self.tenant = tenant
        self.drop = drop
        self.ask_gaps = ask_gaps
        self.devices: dict[str, DeviceState] = {}
        self.bad: list[str] = []
        self.lock = threading.Lock()
        self.cfg = BrokerConfig.from_url(url)
        self.client = new_client(self.cfg, f"acker-{tenant}")
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *_a: self.subscribed.set()
        self.client.reconnect_delay_set(0.1, 0.5)  # type: ignore[arg-type]  # paho takes seconds
        self.last_gap: dict[str, tuple[int, float]] = {}

    def start(self) -> Acker:
        connect(self.client, self.cfg)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise TimeoutError("the acker's subscription was not confirmed")
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, daemon=True)
        self._flusher.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._flusher.join(2)
        self.client.disconnect()
        self.client.loop_stop()

    def _flush_loop(self) -> None:
        # cumulative acks, like head office: the latest applied_through every 10 ms
        sent: dict[str, int] = {}
        while not self._stop.wait(0.01):
            with self.lock:
                todo = [
                    (d, st.applied, st.seen.get(st.applied))
                    for d, st in self.devices.items()
                    if st.applied and sent.get(d) != st.applied
                ]
            for device, applied, h in todo:
                self.client.publish(
                    topics.ack(self.tenant, device),
                    messages.encode_ack(applied, h),
                    qos=1,
                    retain=True,
                )
                sent[device] = applied

    def _on_connect(self, c: mqtt.Client, *_a: object) -> None:
        c.subscribe(topics.records_all(self.tenant), qos=1)

    def _on_message(self, c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            rec = open_record(bytes(msg.payload), self.keys.get)
        except ProtocolError as e:
            with self.lock:
                self.bad.append(f"{msg.topic}: {e}")
            return
        with self.lock:
            st = self.devices.setdefault(rec.device, DeviceState())
            st.deliveries += 1
            st.per_seq[rec.seq] = st.per_seq.get(rec.seq, 0) + 1
            if self.drop is not None and self.drop(rec.device, rec.seq, st.per_seq[rec.seq]):
                return
            st.seen.setdefault(rec.seq, rec.hash)
            st.prev.setdefault(rec.seq, rec.prev)
            if st.seen[rec.seq] != rec.hash:
                self.bad.append(f"{rec.device} seq {rec.seq}: a different record")
            while st.applied + 1 in st.seen:
                # every record, whether it arrived in order or waited behind a gap
                nxt = st.applied + 1
                want = st.seen[nxt - 1] if nxt > 1 else R.ZERO_HASH
                if st.prev[nxt] != want:
                    st.chain_ok = False
                    self.bad.append(f"{rec.device} seq {nxt}: prev is not seq {nxt - 1}'s hash")
                st.applied = nxt
            applied = st.applied
            # a hole below anything seen: ask for it now, not only when more arrives
            top = max(st.seen)
            gap = top > st.applied + 1
            first_known = min((s for s in st.seen if s > applied), default=top + 1)
            if gap:  # ask once per missing start, again only after a second
                prev_gap = self.last_gap.get(rec.device)
                now = time.monotonic()
                if prev_gap is not None and prev_gap[0] == applied + 1 and now - prev_gap[1] < 1:
                    gap = False
                else:
                    self.last_gap[rec.device] = (applied + 1, now)
        if gap and self.ask_gaps:
            c.publish(
                topics.gap(self.tenant, rec.device),
                messages.encode_gap([(applied + 1, first_known - 1)]),
                qos=1,
            )

    def applied(self, device: str) -> int:
        with self.lock:
            st = self.devices.get(device)
            return st.applied if st else 0

    def wait_applied(self, device: str, n: int, timeout: float = 30.0) -> bool:
        return until(lambda: self.applied(device) >= n, timeout, 0.02)
