"""The one shape of a progress logger: a function that takes a line."""

from __future__ import annotations

from collections.abc import Callable

Log = Callable[[str], None]
