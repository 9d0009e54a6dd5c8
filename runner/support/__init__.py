"""Generic helpers that know nothing of batchctl: file locks, retries."""
