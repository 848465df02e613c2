"""Local HTTP servers that speak the SMS gateways' documented wire formats.

Each fake is a real ``ThreadingHTTPServer`` on 127.0.0.1 in a thread (HTTP/1.1,
keep-alive), so the adapters are tested through httpx, sockets and all.  A fake:

* accepts sends, returns ids and costs, and keeps what it accepted in ``messages``;
* reports delivery later: ``deliver(id, ...)`` sets what the next status call returns;
* answers with an error when told: ``fail_next("invalid_number" | "no_credit" |
  "rate_limited" | "server_error" | "busy" | "auth" | "garbled" | "timeout")``;
  "timeout" accepts the message and then holds the reply until the fake is closed, so a
  client with a short timeout sees exactly an ambiguous timeout;
* has a raw mode (``raw = True``) that answers every send with a canned success and
  counts it, without bookkeeping, for throughput benchmarks.

Wire formats follow the providers' documentation (see the adapters' docstrings).
"""

from tests.messages.fakes.ippanel import FakeIPPanel
from tests.messages.fakes.kavenegar import FakeKavenegar
from tests.messages.fakes.server import FAULTS, FakeGateway, Received, Stored, parts

__all__ = ["FAULTS", "FakeGateway", "FakeIPPanel", "FakeKavenegar", "Received", "Stored", "parts"]
