"""``python -m edge run --config PATH``: the terminal agent as a service.

Logs go to standard error (journald under systemd).  SIGTERM and SIGINT stop it cleanly:
the POS API closes, the uplink says goodbye (retained offline status), devices close.
Exit status: 0 stopped, 2 configuration error, 1 any other failure to start.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from socketserver import BaseServer

from edge.agent import Agent
from edge.config import Config, load
from edge.errors import ConfigError, LoyaltyError
from edge.posapi import bind, start


def _start(path: str) -> tuple[Config, Agent, BaseServer, str]:
    """Configuration, the data directory's lock (one agent per terminal), the POS API's
    address (bound before any device is opened), the devices; each failure in one line."""
    cfg = load(path)
    agent = Agent(cfg)
    try:
        server, where = bind(agent, cfg.listen, cfg.api_token)
    except OSError as e:
        agent.stop()
        raise ConfigError(
            "pos_api.listen",
            f"{cfg.listen}: {e.strerror or e} (is another program, or another agent, using it?)",
        ) from None
    try:
        agent.start()
    except BaseException:
        server.server_close()
        agent.stop()
        raise
    start(server)
    return cfg, agent, server, where


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edge")
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run the terminal agent")
    run.add_argument("--config", required=True)
    run.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    log = logging.getLogger("edge")
    try:
        cfg, agent, server, where = _start(args.config)
    except ConfigError as e:
        print(f"configuration error: {e}", file=sys.stderr)
        return 2
    except LoyaltyError as e:
        print(f"cannot start: {e}", file=sys.stderr)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_a: stop.set())
    signal.signal(signal.SIGINT, lambda *_a: stop.set())
    log.info("agent %s/%s/%s serving the POS API on %s", cfg.tenant, cfg.store, cfg.device, where)
    print(f"listening {where}", flush=True)
    stop.wait()
    log.info("stopping")
    server.shutdown()
    agent.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
