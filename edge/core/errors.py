"""Typed errors of the core (MicroPython subset), and the root of the project's tree.

    LoyaltyError                    everything this project raises on purpose
     └── CoreError                  anything the core refuses
          ├── RuleError             a rules bundle (or one rule in it) is invalid
          ├── InputError            a basket, member snapshot or request is invalid
          │    └── RefundError      a refund/void that cannot be done
          ├── PhoneError            not an Iranian mobile number (bilingual message)
          └── DateError             a malformed or impossible date/time

``LoyaltyError`` lives here, in the plain subset, so that the core's errors can descend from
it on MicroPython too (MicroPython cannot give an exception two built-in bases); edge.errors
re-exports it and draws the whole tree.  Every error carries ``en`` and ``fa`` texts (the same
text when no person sees it) and the core's a ``reason`` for logs.
"""


class LoyaltyError(Exception):
    """Base of the project's own errors; ``en``/``fa`` for the person who reads it."""

    def __init__(self, message, fa=None):
        super().__init__(message)
        self.en = message
        self.fa = fa if fa is not None else message


class CoreError(LoyaltyError):
    """Base of everything the MicroPython-compatible core refuses."""

    def __init__(self, reason, fa=None):
        super().__init__(reason, fa)
        self.reason = reason


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
