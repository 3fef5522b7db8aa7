"""Entry point of ``python -m rpn_viz``."""

import sys

from .cli import main

sys.exit(main())
