"""A short, blocking MQTT session for the tools: connect, subscribe, publish, wait.

The terminal's uplink and head office's service keep persistent sessions; a tool does
not (session expiry 0), so it leaves nothing behind on the broker.  Every wait has a
deadline; a broker that cannot be reached or does not answer is an
:class:`~firmware_tools.ui.UnreachableError` error, one that refuses is
:class:`~firmware_tools.ui.RefusedError`.
"""

from __future__ import annotations

import dataclasses
import queue
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

from edge.protocol.mqtt import BrokerConfig, connect, new_client
from edge.queues import first
from firmware_tools.ui import RefusedError, UnreachableError, dev


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    retain: bool


class Session:
    def __init__(self, cfg: BrokerConfig, client_id: str, timeout: float = 10.0) -> None:
        self.cfg = dataclasses.replace(cfg, session_expiry=0)
        self.client_id = client_id
        self.timeout = timeout
        self.messages: queue.Queue[Message] = queue.Queue()
        self._cond = threading.Condition()
        self._connack: Any = None
        self._gone: str | None = None
        self._subacks: dict[int, list[Any]] = {}
        self._client: mqtt.Client | None = None

    # -- callbacks (paho's thread) --------------------------------------------------------

    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        with self._cond:
            self._connack = reason
            self._cond.notify_all()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        with self._cond:
            self._gone = str(reason)
            self._cond.notify_all()

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, mid: int, codes: Any, _p: Any) -> None:
        with self._cond:
            self._subacks[mid] = list(codes)
            self._cond.notify_all()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self.messages.put(Message(msg.topic, bytes(msg.payload), bool(msg.retain)))

    # -- the session -----------------------------------------------------------------------

    def _wait(self, ready: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not ready():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def open(self) -> Session:
        c = new_client(self.cfg, self.client_id)
        c.connect_timeout = self.timeout
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_message
        url = self.cfg.url
        try:
            connect(c, self.cfg)
        except ssl.SSLError as e:
            raise RefusedError(
                f"TLS with the broker {url} failed: {dev(e, 200)}",
                f"اتصال امن (TLS) با کارگزار {url} برقرار نشد: {dev(e, 200)}",
                "tls",
            ) from None
        except OSError as e:
            raise UnreachableError(
                f"cannot reach the broker {url}: {dev(e, 200)}",
                f"کارگزار {url} در دسترس نیست: {dev(e, 200)}",
                "unreachable",
            ) from None
        self._client = c
        c.loop_start()
        if not self._wait(
            lambda: self._connack is not None or self._gone is not None, self.timeout
        ):
            self.close()
            raise UnreachableError(
                f"the broker {url} did not answer the MQTT CONNECT within {self.timeout:g} s",
                f"کارگزار {url} در {self.timeout:g} ثانیه به درخواست اتصال پاسخ نداد",
                "no_connack",
            )
        if self._connack is None or self._connack.is_failure:
            why = self._connack if self._connack is not None else self._gone
            self.close()
            raise RefusedError(
                f"the broker {url} refused this device: {dev(why, 120)} (its certificate, "
                "or the broker's allow list?)",
                f"کارگزار {url} این دستگاه را نپذیرفت: {dev(why, 120)} (گواهی دستگاه یا "
                "فهرست مجاز کارگزار را بررسی کنید)",
                "connect_refused",
            )
        return self

    @property
    def client(self) -> mqtt.Client:
        if self._client is None:
            raise UnreachableError("not connected", "وصل نیست", "closed")
        return self._client

    def tls(self) -> tuple[str, dict[str, Any]] | None:
        """(TLS version, the broker's certificate as ssl reports it), or None without TLS."""
        sock = self.client.socket()
        if not isinstance(sock, ssl.SSLSocket):
            return None
        return sock.version() or "", dict(sock.getpeercert() or {})

    def subscribe(self, topic: str) -> int:
        """Subscribe (QoS 1) and return the SUBACK reason code (>= 0x80: refused)."""
        _rc, mid = self.client.subscribe(topic, qos=1)
        if mid is None or not self._wait(lambda: mid in self._subacks, self.timeout):
            raise UnreachableError(
                f"the broker did not confirm the subscription to {topic}",
                f"کارگزار اشتراک {topic} را تأیید نکرد",
                "no_suback",
            )
        code = self._subacks[mid][0]
        return int(code.value if hasattr(code, "value") else code)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Publish with QoS 1 and wait for the broker's PUBACK."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        deadline = time.monotonic() + self.timeout
        while not info.is_published():
            if time.monotonic() >= deadline or self._gone is not None:
                raise UnreachableError(
                    f"the broker did not acknowledge the message on {topic}",
                    f"کارگزار دریافت پیام روی {topic} را تأیید نکرد",
                    "no_puback",
                )
            time.sleep(0.01)

    def wait_for(self, match: Callable[[Message], bool], timeout: float) -> Message | None:
        """The first message that ``match`` accepts within ``timeout`` seconds."""
        return first(self.messages, match, timeout)

    def close(self) -> None:
        c, self._client = self._client, None
        if c is not None:
            if self._gone is None:
                c.disconnect()
                self._wait(lambda: self._gone is not None, 1.0)  # DISCONNECT really sent
            c.loop_stop()

    def __enter__(self) -> Session:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
