"""ZVT, the cash-register interface of bank card terminals (``bank.driver = "zvt"``).

framing     DLE STX ... DLE ETX CRC frames (serial) and length-delimited APDUs (TCP)
apdu        APDUs, BCD, BMPs, TLV; the messages of a payment, built and read
codes       result and status codes in English and Persian, card types
transport   ACK/NAK, retransmission and the T1-T4 timers over a serial or TCP port
terminal    :class:`ZVTTerminal`, the :class:`~edge.drivers.base.BankTerminal`
"""

from edge.drivers.zvt.terminal import ZVTTerminal
from edge.drivers.zvt.transport import Timers

__all__ = ["Timers", "ZVTTerminal"]
