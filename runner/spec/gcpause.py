"""Building many objects at once without the cycle collector walking them over and over."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector while many long-lived objects are built.

    Parsing 10,000 specs, or reading 100,000 jobs and ledger records, allocates millions
    of small objects that stay alive; every few hundred allocations the collector walks
    all of them again: half of ``validate``'s time at 10,000 specs (bench/specs.py), a
    third of observe + plan at 100,000 jobs (bench/reconcile.py). Nothing built under
    it may rely on the collector to be freed (no reference cycles).

    At the end the survivors are moved to the oldest generation without a walk
    (``freeze`` then ``unfreeze``): resuming with them all in the youngest would make
    the next allocation walk them all at once (0.3 s at 10,000 specs); there they are
    collected, if ever garbage, by the next full collection as any long-lived object is.
    """
    if not gc.isenabled():  # paused further out: that one resumes
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        gc.enable()
