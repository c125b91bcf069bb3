"""``python -m flaglens``: the command line."""

import sys

from flaglens.cli.main import main

sys.exit(main())
