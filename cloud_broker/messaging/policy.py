"""The rules every message obeys, in one place; the sender asks before each send.

1. A message past its time is dropped (``expired``): a thank-you for a purchase two days
   ago, a greeting for a day gone.  Automated messages expire after ``stale_hours``;
   campaigns when their operator says.
2. A member who opted out (``members.sms_opt_out``: the console, the member panel, a
   ``blocked`` report from the gateway after they answered «۱۱») gets nothing but what the
   law requires (``transactional`` rows: one-time login codes, which are never marketing).
3. Quiet hours (Tehran time, 22:00 to 08:00 by default): the message is held until they
   end, not dropped.  Transactional messages are not held.
4. The frequency cap: at most ``cap_count`` marketing messages a member in ``cap_days``;
   a message beyond it is ``skipped`` as ``capped`` (held ones would come in a burst).
5. Exactly once per member, trigger and occasion: the outbox's dedupe key (outbox.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cloud_broker.ledger.db import Tx
from cloud_broker.messages.occasions import QuietHours
from cloud_broker.messaging.outbox import Message
from cloud_broker.messaging.settings import Settings


@dataclass(frozen=True, slots=True)
class Decision:
    act: str  # send, hold, skip
    until: int = 0  # hold: when it may go
    reason: str = ""


SEND = Decision("send")


def decide(  # noqa: PLR0911 - one return per rule, in the order the docstring lists them
    tx: Tx, msg: Message, member: Any, settings: Settings, now: int
) -> Decision:
    """What to do with ``msg`` now; ``member`` is its row of outbox.members_of (None: gone)."""
    if msg.expires_at is not None and now > msg.expires_at:
        return Decision("skip", reason="expired")
    if member is None or member[6] is not None:
        return Decision("skip", reason="no_member")
    if msg.transactional:
        return SEND
    if member[5]:
        return Decision("skip", reason="opted_out")
    start, end = settings.quiet()
    quiet = QuietHours(start, end)
    if quiet.quiet(now):
        return Decision("hold", until=quiet.next_allowed(now), reason="quiet_hours")
    since = now - settings["cap_days"] * 86_400_000
    sent = int(tx.one(
        "SELECT COUNT(*) FROM sms_outbox WHERE member = ? AND transactional = 0 AND sent_at >= ? "
        "AND state IN ('sent', 'delivered', 'undelivered', 'blocked')",
        (msg.member, since),
    )[0])  # fmt: skip
    if sent >= settings["cap_count"]:
        return Decision("skip", reason="capped")
    return SEND
