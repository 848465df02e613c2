"""``python -m cloud_broker``: see cloud_broker.cli."""

import sys

from cloud_broker.cli import main

sys.exit(main())
