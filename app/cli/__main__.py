"""`python -m app.cli`: the svdscope command line."""

import sys

from app.cli import main

sys.exit(main())
