"""A USB adapter pulled out under a running driver: every driver reports a DeviceError (the
agent marks the device and keeps going), never a bare pyserial exception that would end the
reader thread while the status still says "ok"."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge.drivers.keypad import Keypad
from edge.drivers.pn532 import PN532Reader
from edge.drivers.rdm6300 import RDM6300Reader
from edge.drivers.scanner import Scanner
from edge.drivers.zvt.terminal import ZVTTerminal
from edge.errors import DeviceError
from hw_sim.device import SimDevice
from hw_sim.keypad import KeypadSim
from hw_sim.pn532 import PN532Sim
from hw_sim.rdm6300 import RDM6300Sim
from hw_sim.scanner import ScannerSim
from hw_sim.transport import PtyServer
from hw_sim.zvt import ZVTSim

CASES: list[tuple[str, Callable[[], SimDevice], Callable[[str], Any], Callable[[Any], Any]]] = [
    ("scanner", ScannerSim, Scanner, lambda d: d.read(0.2)),
    ("keypad", KeypadSim, Keypad, lambda d: d.read_phone(0.2)),
    ("rdm6300", RDM6300Sim, RDM6300Reader, lambda d: d.read(0.2)),
    ("pn532", PN532Sim, PN532Reader, lambda d: d.read(0.3)),
    ("zvt", lambda: ZVTSim(step=0.002), ZVTTerminal, lambda d: d.register()),
]


@pytest.mark.parametrize(("name", "sim", "driver", "use"), CASES, ids=[c[0] for c in CASES])
def test_a_vanished_port_is_a_device_error(
    tmp_path: Path,
    name: str,
    sim: Callable[[], SimDevice],
    driver: Callable[[str], Any],
    use: Callable[[Any], Any],
) -> None:
    srv = PtyServer(sim(), tmp_path / name).start()
    drv = driver(str(tmp_path / name))
    try:
        srv.stop()  # the other end of the line is gone
        with pytest.raises(DeviceError):
            for _ in range(20):  # a reader may need a read or two to notice
                use(drv)
    finally:
        drv.close()
