"""The error tree of the CPython side of the project.

    Exception
     └── LoyaltyError                 everything this project raises on purpose
          ├── ConfigError             a setting is wrong; .setting names it   (also ValueError)
          ├── ProtocolError           bytes from the wire or the outbox refused; .code says why
          │    ├── DecodeError        malformed or non-canonical CBOR          (also ValueError)
          │    ├── RecordError        a record that breaks the payload schema  (also ValueError)
          │    └── SignatureError     COSE structure, key id or signature invalid
          ├── StorageError            the terminal's SQLite cannot do what was asked
          │    ├── OutboxFullError    the outbox reached its hard limit (bilingual message)
          │    ├── DiskFullError      the terminal's disk (not the outbox) has no room left
          │    └── ChainConflictError head office holds more of this device's chain than
          │                           the terminal does (reinstalled or restored): no new
          │                           records until a technician resumes it
          └── DeviceError             a device did not answer or answered nonsense

    ValueError
     └── CoreError                    the MicroPython-compatible core (edge.core.errors):
          RuleError, InputError, RefundError, PhoneError, DateError

Errors meant for a person at the till or a technician carry ``fa`` and ``en`` texts.
"""

from __future__ import annotations

from edge.core.errors import (
    CoreError,
    DateError,
    InputError,
    PhoneError,
    RefundError,
    RuleError,
)

__all__ = [
    "ChainConflictError",
    "ConfigError",
    "CoreError",
    "DateError",
    "DecodeError",
    "DeviceError",
    "DiskFullError",
    "InputError",
    "LoyaltyError",
    "OutboxFullError",
    "PhoneError",
    "ProtocolError",
    "RecordError",
    "RefundError",
    "RuleError",
    "SignatureError",
    "StorageError",
]


class LoyaltyError(Exception):
    """Base of the project's own errors (CPython side)."""

    def __init__(self, message: str, *, fa: str | None = None) -> None:
        super().__init__(message)
        self.en = message
        self.fa = fa if fa is not None else message


class ConfigError(LoyaltyError, ValueError):
    """A configuration setting is missing or wrong."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


class ProtocolError(LoyaltyError, ValueError):
    """Bytes refused; ``code`` is a short machine-readable reason for quarantine."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class DecodeError(ProtocolError):
    """Malformed, non-canonical or disallowed CBOR."""


class RecordError(ProtocolError):
    """A well-formed record whose payload breaks the schema."""


class SignatureError(ProtocolError):
    """The COSE_Sign1 envelope, its key id or its signature is not acceptable."""


class StorageError(LoyaltyError):
    """The terminal's SQLite could not do what was asked."""


class OutboxFullError(StorageError):
    """The outbox reached its hard limit: no new sales until it drains."""


class DiskFullError(StorageError):
    """The file system holding the terminal's database is full (SQLITE_FULL, ENOSPC, or
    less free space than the configured minimum): the outbox itself may be nearly empty."""


class DeviceError(LoyaltyError):
    """A device did not answer, or answered something that cannot be used."""


class ChainConflictError(StorageError):
    """Head office's acknowledgement names records this terminal does not hold (it was
    reinstalled with the same key, or its database restored from an old copy): recording
    more would fork the device's hash chain, so club records stop until it is resumed."""
