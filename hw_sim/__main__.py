"""``python -m hw_sim``: see hw_sim.cli."""

import sys

from hw_sim.cli import main

sys.exit(main())
