"""The customer's side of the till: a small local web page for a second screen facing the
customer (``/``), and the same page as a self-service kiosk (``/?mode=kiosk``).

Served by the agent on its own address (``[display] listen``), from files shipped in the
package (``edge/display_assets``: no internet, no CDN).  The page follows the till live by
server-sent events (``/events``): the basket as the POS sent it, who was identified (name or
a masked phone), each discount with the engine's own explanation, the points earned, the
new balance and the tier with what is left to the next, then a thank-you.  Everything comes
from the terminal itself, so it is right while the store is offline.

The checkout tells the display what changed by handing it the session's view, on the agent
thread, at the end of each step (:meth:`Display.show`: a dict stored and an event set, no
I/O); building the screen and sending it happen on the display's threads, off the
checkout's critical path.

Kiosk calls (``/kiosk/balance``, ``/kiosk/enrol``) run the checkout's own functions on the
agent thread, with the same rules and the same messages as the POS API; the page clears
itself after ``idle_s`` without a touch so the next person never sees the last one's data.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from edge.core.dates import days_from_civil, parse_date, parse_timestamp
from edge.core.errors import CoreError
from edge.core.phone import normalise
from edge.sanitize import clean
from edge.settlement import CheckoutError

log = logging.getLogger("edge.display")
ASSETS = Path(__file__).resolve().parent / "display_assets"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".woff2": "font/woff2",
    ".svg": "image/svg+xml",
}
THANKS_S = 20  # the thank-you stays this long, then the welcome screen
HEARTBEAT_S = 15
MAX_BODY = 4096


def mask(member: str) -> str:
    """+989121234567 -> 0912***4567; a card -> its last four: enough for the customer to
    recognise, not for someone behind them to copy."""
    if member.startswith("+98") and len(member) == 13:
        return "0" + member[3:6] + "***" + member[-4:]
    return "***" + clean(member, 64)[-4:]


def screen(
    view: dict[str, Any] | None,
    basket: dict[str, Any] | None,
    name: str | None,
    tiers: list[Any] | None = None,
) -> dict[str, Any]:
    """What the customer's screen shows for a session's view (or the welcome screen);
    ``tiers`` (the rules' in force) say what is left to the next tier."""
    if view is None or view.get("state") in ("cancelled",):
        return {"screen": "welcome"}
    q = view.get("quote") or {}
    names = [clean(str(ln.get("name") or ""), 40) for ln in (basket or {}).get("lines", [])]
    lines = [
        {
            "name": names[i] if i < len(names) and names[i] else clean(str(ln["sku"]), 40),
            "qty": ln["qty"],
            "gross": ln["gross"],
            "discount": ln["discount"],
            "paid": ln["paid"],
        }
        for i, ln in enumerate(q.get("lines", []))
    ]
    applied = [
        {
            "fa": clean(str(a.get("fa") or ""), 160),
            "en": clean(str(a.get("en") or ""), 160),
            "kind": a.get("kind"),
        }
        for a in q.get("applied", [])
        if a.get("fa") or a.get("en")
    ]
    member = view.get("member")
    m = q.get("member") or {}
    out: dict[str, Any] = {
        "screen": "thanks" if view.get("state") == "paid" else "basket",
        "state": view.get("state"),
        "lines": lines,
        "subtotal": q.get("subtotal", 0),
        "discount": q.get("discount", 0),
        "wallet_used": q.get("wallet_used", 0),
        "payable": q.get("payable", 0),
        "points_earned": q.get("points_earned", 0),
        "points_redeemed": q.get("points_redeemed", 0),
        "cashback": q.get("wallet_earned", 0),
        "applied": applied,
        "member": None,
    }
    nxt, left = None, 0
    if member and tiers:
        spend = int(m.get("rolling_spend") or 0) + (
            int(q.get("payable", 0)) if view.get("state") == "paid" else 0
        )
        nxt = next(
            (t for t in sorted(tiers, key=lambda t: t.min_spend) if t.min_spend > spend), None
        )
        left = nxt.min_spend - spend if nxt else 0
    if member:
        out["member"] = {
            "who": clean(name, 40) if name else mask(str(member)),
            "points_before": m.get("points_before"),
            "points_after": m.get("points_after"),
            "tier_fa": m.get("tier_fa"),
            "tier_en": m.get("tier_en"),
            "next_fa": nxt.fa if nxt else None,
            "next_en": nxt.en if nxt else None,
            "left": left,
            "enrolled": bool(view.get("enrolled")),
        }
    return out


class Display:
    """The screen's state and its watchers; ``show`` is called on the agent thread."""

    def __init__(self, tiers: Any = None) -> None:
        self.tiers = tiers  # () -> the tiers in force
        self._cond = threading.Condition()
        self._version = 0
        self._view: tuple[dict[str, Any], dict[str, Any] | None, str | None] | None = None
        self._at = 0.0

    def show(
        self, view: dict[str, Any], basket: dict[str, Any] | None = None, name: str | None = None
    ) -> None:
        """A session changed: keep its view (no I/O, no serialising here)."""
        with self._cond:
            self._view, self._at = (view, basket, name), time.monotonic()
            self._version += 1
            self._cond.notify_all()

    def current(self) -> tuple[int, dict[str, Any]]:
        with self._cond:
            version, v, at = self._version, self._view, self._at
        if v is None or (v[0].get("state") == "paid" and time.monotonic() - at > THANKS_S):
            return version, {"screen": "welcome"}
        return version, screen(*v, self.tiers() if self.tiers is not None else None)

    def wait(self, version: int, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._version != version, timeout)


class _Handler(BaseHTTPRequestHandler):
    display: Display
    agent: Any
    kiosk: bool
    idle_s: int
    server_version = "loyalty-display"

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("display: %s", fmt % args)

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", "default-src 'self'; connect-src 'self'")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: dict[str, Any]) -> None:
        self._send(status, json.dumps(data, ensure_ascii=False).encode(), "application/json")

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/events":
            self._events()
            return
        if path == "/config":
            self._json(200, {"kiosk": self.kiosk, "idle_s": self.idle_s})
            return
        name = "index.html" if path == "/" else path.lstrip("/")
        f = (ASSETS / name).resolve()
        if ASSETS not in f.parents or not f.is_file() or f.suffix not in TYPES:
            self._json(404, {"error": "not_found", "en": "no such page", "fa": "چنین صفحه‌ای نیست."})
            return
        self._send(200, f.read_bytes(), TYPES[f.suffix])

    def _events(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        version = -1
        try:
            while True:
                now, data = self.display.current()
                if now != version:
                    version = now
                    payload = json.dumps(data, ensure_ascii=False)
                    self.wfile.write(f"data: {payload}\n\n".encode())
                    self.wfile.flush()
                if not self.display.wait(version, HEARTBEAT_S):
                    self.wfile.write(b": keep-alive\n\n")  # and re-check the thank-you's end
                    self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if not self.kiosk or path not in ("/kiosk/balance", "/kiosk/enrol"):
            self._json(
                404,
                {"error": "not_found", "en": "no such endpoint", "fa": "چنین مسیری وجود ندارد."},
            )
            return
        try:
            size = int(self.headers.get("Content-Length") or 0)
            if not 0 <= size <= MAX_BODY:  # a negative length would read until the peer closes
                raise CheckoutError("bad_request", "the body is too large",
                                    "درخواست نامعتبر است.")  # fmt: skip
            body = json.loads(self.rfile.read(size) or b"{}")
            phone = body.get("phone") if isinstance(body, dict) else None
            if not isinstance(phone, str):
                raise CheckoutError(
                    "bad_phone", "the phone must be text", "شماره موبایل را وارد کنید."
                )
            if path == "/kiosk/balance":
                self._json(200, self.agent.call(self.agent.kiosk_card, phone))
            else:
                if body.get("consent") is not True:
                    raise CheckoutError(
                        "bad_request", "joining needs your consent", "عضویت به رضایت شما نیاز دارد."
                    )
                self._json(200, self.agent.call(self.agent.checkout.enroll, phone))
        except (CheckoutError, CoreError) as e:
            self._json(
                400,
                {
                    "error": getattr(e, "code", "bad_request"),
                    "en": str(e),
                    "fa": getattr(e, "fa", "") or str(e),
                },
            )
        except (ValueError, json.JSONDecodeError):
            self._json(
                400,
                {"error": "bad_json", "en": "the body is not JSON", "fa": "درخواست نامعتبر است."},
            )


def serve(
    display: Display, agent: Any, listen: str, kiosk: bool, idle_s: int, tiers: Any = None
) -> tuple[ThreadingHTTPServer, str]:
    """Bind the display's address and serve it on a daemon thread; (server, its URL)."""
    if tiers is not None:
        display.tiers = tiers
    host, _, port = listen.rpartition(":")
    handler = type(
        "DisplayHandler",
        (_Handler,),
        {"display": display, "agent": agent, "kiosk": kiosk, "idle_s": idle_s},
    )
    server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="display", daemon=True).start()
    h, p = server.server_address[:2]
    return server, f"http://{h!s}:{p}/"


def kiosk_card(checkout: Any, phone: str) -> dict[str, Any]:
    """A member's balance for the kiosk (on the agent thread): points, wallet, tier and
    what is left to the next, coupons held; ``known`` false for a number that is no member
    yet (the kiosk then offers to join)."""
    try:
        member = normalise(phone)
    except CoreError as e:
        raise CheckoutError("bad_phone", e.en, e.fa) from e
    rs = checkout.rules.current
    t = parse_timestamp(checkout.clock.now().iso())
    est = checkout.members.estimate(member, t["day"], checkout.online(), rs.policy if rs else {})
    if not est.known:
        return {"known": False, "who": mask(member)}
    out: dict[str, Any] = {
        "known": True,
        "who": mask(member),
        "points": est.points,
        "wallet": est.wallet,
        "coupons": est.engine.get("coupons", []),
    }
    if rs is not None and rs.tiers:
        oldest = t["day"] - rs.window_days
        spend = 0
        for d, a in est.engine.get("spend", []):
            if oldest < days_from_civil(*parse_date(d)) <= t["day"]:
                spend += int(a)
        tier = rs.tier_for_spend(max(spend, 0))
        nxt = next(
            (x for x in sorted(rs.tiers, key=lambda x: x.min_spend) if x.min_spend > spend), None
        )
        out.update(
            {
                "tier_fa": tier.fa,
                "tier_en": tier.en,
                "next_fa": nxt.fa if nxt else None,
                "next_en": nxt.en if nxt else None,
                "left": (nxt.min_spend - spend) if nxt else 0,
            }
        )
    return out
