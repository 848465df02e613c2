"""Head office's own secrets (the console's cookie key, the webhooks' master key): from an
environment variable, or a file of mode 0600 made on first use.  Never in the ledger."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from edge.errors import ConfigError


def load(path: Path | None, env: str, what: str, why: str) -> bytes:
    """``$env`` if set, else the file at ``path`` (made with 48 random bytes when missing);
    ConfigError for a file others may read or one too short."""
    value = os.environ.get(env)
    if value:
        return value.encode()
    if path is None:
        raise ConfigError(what, f"give its file or ${env}")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    if path.stat().st_mode & 0o077:
        raise ConfigError(what, f"{path} is readable by others: chmod 600 it ({why})")
    data = path.read_bytes().strip()
    if len(data) < 32:
        raise ConfigError(what, f"{path} holds less than 32 bytes")
    return data
