"""``python -m kportforward``."""

import sys

from kportforward.cli import main

sys.exit(main())
