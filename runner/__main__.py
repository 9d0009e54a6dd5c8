"""`python -m runner` is `batchctl`."""

import sys

from runner.cli import main

sys.exit(main())
