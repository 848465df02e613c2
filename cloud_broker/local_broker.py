"""A private Mosquitto for tests and the demo: own config, own port, own data directory.

Not a broker implementation: it runs the real ``mosquitto`` binary and can kill and
restart it (SIGKILL or SIGTERM) on the same port to stage outages.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from edge.errors import ConfigError


def find_mosquitto() -> str:
    for cand in (shutil.which("mosquitto"), "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if cand and Path(cand).exists():
            return cand
    raise ConfigError("mosquitto", "the mosquitto binary is not installed (./dev installs it)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalMosquitto:
    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        extra_config: str = "",
        persistence: bool = True,
        config_text: str | None = None,
    ) -> None:
        """``config_text``: a complete configuration of the caller's (e.g. the TLS one
        firmware_tools broker-config writes) used as it is; it must listen on ``port``."""
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.binary = find_mosquitto()
        self.conf = self.workdir / "mosquitto.conf"
        self.log_file = self.workdir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None
        if config_text is not None:
            self.conf.write_text(config_text)
            return
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            # run as root (a container, CI), mosquitto drops to user "mosquitto", who cannot
            # write here: its log and its store (the sessions it keeps) would silently vanish
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
            f"persistence {'true' if persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            "autosave_interval 1",
            "max_queued_messages 1000000",
            "max_inflight_messages 0",
            "set_tcp_nodelay true",
            f"log_dest file {self.log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
        ]
        if extra_config:
            lines.append(extra_config)
        self.conf.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        self.proc = subprocess.Popen(  # noqa: S603 - our own binary and config
            [self.binary, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ConfigError(
                    "mosquitto", f"exited with {self.proc.returncode}; see {self.log_file}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise ConfigError("mosquitto", f"did not listen on port {self.port} within {timeout}s")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        p = self.proc
        if p is None or p.poll() is not None:
            return
        os.kill(p.pid, sig)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)

    def restart(self, sig: int = signal.SIGKILL, down_for: float = 0.0) -> None:
        self.kill(sig)
        if down_for:
            time.sleep(down_for)
        self.start()

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def __enter__(self) -> LocalMosquitto:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
