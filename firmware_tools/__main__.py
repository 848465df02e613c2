import sys

from firmware_tools.cli import main

sys.exit(main())
