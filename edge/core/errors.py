"""Typed errors of the core (MicroPython subset).

    ValueError
     └── CoreError                  anything the core refuses
          ├── RuleError             a rules bundle (or one rule in it) is invalid
          ├── InputError            a basket, member snapshot or request is invalid
          │    └── RefundError      a refund/void that cannot be done
          ├── PhoneError            not an Iranian mobile number (bilingual message)
          └── DateError             a malformed or impossible date/time

Every error carries ``reason`` (English, for logs) and, where a person at the till
sees it, ``fa``/``en`` texts.  The tree is re-exported by ``edge.errors`` for
CPython code.
"""


class CoreError(ValueError):
    """Base of everything the MicroPython-compatible core refuses."""

    def __init__(self, reason, fa=None):
        super().__init__(reason)
        self.reason = reason
        self.en = reason
        self.fa = fa if fa is not None else reason


class RuleError(CoreError):
    """A rules bundle was refused; ``rule`` names the offending rule (or a section)."""

    def __init__(self, rule, reason):
        super().__init__("rule %s: %s" % (rule, reason))
        self.rule = rule
        self.detail = reason


class InputError(CoreError):
    """A basket, member snapshot or request is malformed; ``field`` says where."""

    def __init__(self, field, reason, fa=None):
        super().__init__("%s: %s" % (field, reason), fa)
        self.field = field
        self.detail = reason


class RefundError(InputError):
    """A refund or void that cannot be done (already refunded, too many units, ...)."""


class PhoneError(CoreError):
    """The text is not a valid Iranian mobile number."""


class DateError(CoreError):
    """A malformed or impossible date or time."""
