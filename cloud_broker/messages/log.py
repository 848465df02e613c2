"""The ``log`` gateway for development: nothing leaves the machine.

Every message is written to the Python log (logger ``cloud_broker.messages.log``, number
masked: ``+98912***4567``) and kept in :attr:`LogGateway.sent`, so a demo or a test can
read what members would have received.  Sends always succeed, cost nothing and are
reported delivered.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cloud_broker.messages.gateway import (
    DeliveryStatus,
    Gateway,
    SendResult,
    check_e164,
    mask_number,
)
from edge.sanitize import clean

log = logging.getLogger("cloud_broker.messages.log")


@dataclass(frozen=True, slots=True)
class LoggedMessage:
    provider_id: str
    to: str
    text: str
    sender: str | None
    ref: str
    template: str | None = None


class LogGateway:
    name = "log"
    supports_templates = True
    refs_deduplicated = True

    def __init__(self, *, sender: str | None = None) -> None:
        self.sender = sender
        self.sent: list[LoggedMessage] = []
        self._lock = threading.Lock()
        self._by_ref: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"LogGateway(sent={len(self.sent)})"

    def send(self, to: str, text: str, *, sender: str | None = None, ref: str) -> SendResult:
        return self._record(check_e164(to, provider=self.name), text, sender, ref, None)

    def send_template(
        self, to: str, template: str, params: Mapping[str, str], *, ref: str
    ) -> SendResult:
        text = " ".join(f"{k}={v}" for k, v in sorted(params.items()))
        return self._record(check_e164(to, provider=self.name), text, None, ref, template)

    def status(self, provider_ids: Sequence[str]) -> dict[str, DeliveryStatus]:
        with self._lock:
            known = {m.provider_id for m in self.sent}
        return {
            pid: DeliveryStatus.DELIVERED if pid in known else DeliveryStatus.UNKNOWN
            for pid in provider_ids
        }

    def close(self) -> None:
        pass

    def _record(
        self, to: str, text: str, sender: str | None, ref: str, template: str | None
    ) -> SendResult:
        with self._lock:
            pid = self._by_ref.get(ref) if ref else None
            if pid is None:  # a retried ref is one message, as at a real gateway
                pid = f"log-{len(self.sent) + 1}"
                if ref:
                    self._by_ref[ref] = pid
                line = sender or self.sender
                self.sent.append(LoggedMessage(pid, to, text, line, ref, template))
                log.info(
                    "sms %s to %s ref=%s%s: %s",
                    pid,
                    mask_number(to),
                    clean(ref, 40),
                    f" template={clean(template, 40)}" if template else "",
                    clean(text.replace("\n", " / "), 400),
                )
        return SendResult(provider_id=pid, status=DeliveryStatus.DELIVERED, cost_rials=0)


if TYPE_CHECKING:  # mypy checks that the adapter implements the interface
    _implements: type[Gateway] = LogGateway
