"""How far a job got: its task counters, and why it failed."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Counts:
    """Task counters of a job."""

    total: int = 0
    succeeded: int = 0
    failed: int = 0

    @property
    def done(self) -> int:
        """Tasks that ran."""
        return self.succeeded + self.failed

    def percent(self) -> int:
        """Share of tasks that ran, in percent."""
        return int(100 * self.done / self.total) if self.total else 0


@dataclass(frozen=True)
class Failure:
    """Why a job failed, or what its failed tasks failed with."""

    reasons: tuple[tuple[str, str], ...] = ()  # (code, reason) of a Failed job
    top_error: tuple[str, int] | None = None  # the commonest error code of failed tasks, count
    note: str | None = None  # what could not be read (no report, report unreadable)

    def text(self) -> str:
        """``ManifestGenerationFailed: cannot list …`` or ``top error NoSuchKey (3 tasks)``."""
        if self.reasons:
            return "; ".join(
                f"{code}: {reason}" if reason else code for code, reason in self.reasons
            )
        if self.top_error is not None:
            code, count = self.top_error
            return f"top error {code} ({count:,} task{'s' if count != 1 else ''})"
        return self.note or ""

    def to_json(self) -> str:
        """The ledger's form."""
        return json.dumps(
            {
                "reasons": [list(r) for r in self.reasons],
                "topError": list(self.top_error) if self.top_error else None,
                "note": self.note,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | None) -> Failure | None:
        """Read the ledger's form back (None when nothing is recorded)."""
        if not text:
            return None
        try:
            data = json.loads(text)
            top = data.get("topError")
            return cls(
                reasons=tuple((str(c), str(r)) for c, r in data.get("reasons") or ()),
                top_error=(str(top[0]), int(top[1])) if top else None,
                note=data.get("note"),
            )
        except (ValueError, TypeError, IndexError, AttributeError):
            return None
