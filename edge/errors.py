"""The project's error tree: one root, every branch, where each is defined.

    Exception
     └── LoyaltyError                     edge.core.errors: everything raised on purpose;
          │                               ``en`` and ``fa`` for the person who reads it
          ├── CoreError                   edge.core.errors: the MicroPython-compatible core
          │    ├── RuleError              a rules bundle (or a rule in it) is invalid
          │    ├── InputError             a basket, member snapshot or request is invalid
          │    │    └── RefundError       a refund or void that cannot be done
          │    ├── PhoneError             not an Iranian mobile number
          │    └── DateError              a malformed or impossible date or time
          ├── ConfigError                 a setting, option or command line is wrong;
          │    │                          ``.setting`` names it           (also ValueError)
          │    └── ResolveError           cloud_broker.reconcile.admission: a quarantine entry that
          │                               cannot be admitted or dismissed as asked
          ├── ProtocolError               bytes refused; ``.code`` says why (quarantine)
          │    │                                                          (also ValueError)
          │    ├── DecodeError            malformed or non-canonical CBOR
          │    ├── RecordError            a record that breaks the payload schema
          │    └── SignatureError         COSE structure, key id or signature invalid
          │         └── InvalidSignature  edge.protocol.ed25519: a signature its keys refuse
          ├── StorageError                the terminal's SQLite cannot do what was asked
          │    ├── OutboxFullError        the outbox reached its own limit
          │    ├── DiskFullError          the terminal's disk (not the outbox) is full
          │    └── ChainConflictError     head office holds more of this device's chain
          │                               than the terminal (reinstalled or restored)
          ├── LedgerError                 head office's database cannot do what was asked
          │    └── ArchiveError           cloud_broker.ledger.archive: a month that cannot be
          │                               archived (yet), an archive file that does not verify
          ├── DeviceError                 a device did not answer or answered nonsense
          │    ├── FramingError           edge.drivers.zvt.framing: a ZVT frame (DLE, CRC)
          │    ├── ZVTError               edge.drivers.zvt.apdu: an APDU, BMP or TLV
          │    ├── ScanError              edge.drivers.scanner: an unreadable scan
          │    ├── RDM6300FrameError      edge.drivers.rdm6300: a 125 kHz frame
          │    └── PN532Error             edge.drivers.pn532_frames
          │         ├── PN532FrameError   a frame that breaks the format (also ValueError)
          │         │    ├── ChecksumError, TruncatedFrameError
          │         ├── PN532TimeoutError, PN532CommandError
          ├── QrError                     edge.protocol.memberqr: a membership QR code that is
          │                               forged, garbled, another club's or expired
          ├── CheckoutError               edge.settlement: a checkout, payment or refund step
          │                               that cannot be done; ``.code`` for the POS (the
          │                               POS API maps codes to HTTP statuses, not the domain)
          ├── ToolError                   firmware_tools.ui: the technician's tools
          │    ├── RefusedError           a check failed, head office or the broker said no
          │    ├── UnreachableError       head office or the broker did not answer
          │    └── AgentRunningError      the agent must be stopped first
          ├── RefusalError                cloud_broker.registry.enrollment: an enrolment, rotation
          │                               or decommission request head office refuses
          ├── TaxError                    cloud_broker.tax.errors: the tax system hand-off
          │    │                          (``.transient``: worth retrying)
          │    ├── TaxValidationError     an invoice we must not send
          │    │    ├── InvalidTaxIdError a tax id's form or check digit
          │    │    └── UnmappedProductError  cloud_broker.invoicing.build: a line whose
          │    │                          SKU and group have no product id
          │    ├── KeyFileError           a taxpayer key or certificate file (or its mode)
          │    ├── PacketError            a JWS/JWE packet that cannot be made or opened
          │    ├── TaxRejectedError       the system refused (4xx, its error codes)
          │    │    └── TaxAuthError      the token or the certificate is refused
          │    ├── TaxUnavailableError    transient: try again later
          │    │    ├── TaxTimeoutError, TaxServerError, TaxRateLimitedError
          │    └── TaxProtocolError       an answer we cannot read (transient)
          ├── GatewayError                cloud_broker.messages.gateway: an SMS gateway
          │    │                          (``.transient``, ``.pauses``, ``.ambiguous``)
          │    ├── InvalidNumberError, InvalidRequestError       permanent
          │    ├── AuthError, NoCreditError                      pause the queue
          │    └── RateLimitedError, ServerError, NetworkError,  transient
          │        GatewayTimeoutError
          ├── TemplateError, OccasionError  cloud_broker.messages: a template, an occasion
          │                               (also ValueError)
          ├── ClubError                   cloud_broker.club.errors: head office refuses a
          │    │                          person's request (``.code`` for a page or the API)
          │    ├── NotAllowedError        the operator's role may not do this
          │    ├── ProgrammeError         a programme change the engine's validator refuses
          │    └── CsrfError              cloud_broker.console.web: a form not from the console
          ├── ScenarioError               hw_sim.scenario: a simulator scenario file
          ├── WireError                   hw_sim.zvt_wire: bytes the simulated terminal refuses
          └── DemoError                   demo.world: the demo could not be set up

Errors inherit from a built-in where the meaning fits (``ValueError`` for bad values), never
for control flow.  Errors meant for a person at the till, a technician or an operator carry
``fa`` and ``en`` texts; a device's or a user's text in them is sanitised (edge.sanitize).
"""

from __future__ import annotations

from edge.core.errors import (
    CoreError,
    DateError,
    InputError,
    LoyaltyError,
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
    "LedgerError",
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


class LedgerError(LoyaltyError):
    """Head office's ledger database could not do what was asked (it cannot be reached,
    or its schema is newer than this software)."""
