"""Where a project keeps what it remembers: ledgers, locks, their locations, migration."""
