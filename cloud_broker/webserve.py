"""Serving one of head office's web processes (the console, the public API, the member
panel): the ``--listen`` address checked, uvicorn without access logs (addresses carry
phone numbers) and without trusting proxy headers, and the one line a supervisor or a test
waits for (``<what> at http://HOST:PORT/...``)."""

from __future__ import annotations

from typing import Any

from edge.errors import ConfigError
from edge.sanitize import clean


def listen(text: str) -> tuple[str, int]:
    """HOST:PORT as given to ``--listen``; ConfigError in one line otherwise."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError("listen", f"{clean(text, 60)}: expected HOST:PORT, e.g. 127.0.0.1:8400")
    return host.strip("[]"), int(port)


def serve(app: Any, address: str, what: str, path: str = "/") -> None:
    """Run ``app`` on ``address`` until stopped, after printing where."""
    import uvicorn  # noqa: PLC0415 - only the serving commands load it

    host, port = listen(address)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                           access_log=False, proxy_headers=False))  # fmt: skip
    print(f"{what} at http://{host}:{port}{path}", flush=True)  # noqa: T201 - the ready line
    server.run()
