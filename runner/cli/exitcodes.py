"""Exit codes of every command: Terraform's convention, sysexits for usage (see ``app.HELP``)."""

OK = 0
ERROR = 1
CHANGES = 2
COSTLY = 3  # plan --max-cost: the estimate is above the bound, or not wholly known
FAILED = 4
USAGE = 64
INTERRUPTED = 130
