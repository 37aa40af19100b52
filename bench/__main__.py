"""``python -m bench all`` / ``python -m bench <scenario> ... [--quick] [--output DIR]``."""

import sys

from bench.runner import main

sys.exit(main())
