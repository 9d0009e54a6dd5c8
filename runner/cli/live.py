"""The view of a running reconcile: a live table on a terminal, timestamped lines elsewhere."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from runner.reconcile.model import Action, ActionKind, Plan
from runner.reports.views import detail, state_label


def _state(action: Action) -> str:
    if action.kind.changes:  # what this pass does to it: create, confirm, cancel …
        return action.kind.value
    return state_label(action)


class LiveView:
    """Shows each pass's plan: a progress bar per Active job, a status line per other job."""

    def __init__(self, terminal: bool) -> None:
        self.terminal = terminal
        self._seen: dict[tuple[str, str], tuple[str, str]] = {}
        self._live: Live | None = None
        if terminal:
            self._live = Live(console=Console(), auto_refresh=False, transient=False)
            self._live.start()

    def update(self, plan: Plan) -> None:
        """Show the latest plan."""
        if self._live is not None:
            self._live.update(self._table(plan), refresh=True)
            return
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for action in plan.actions:
            state = _state(action)
            text = detail(action, state)
            shown = text
            if (
                action.status is not None
                and not action.status.final
                and action.kind is ActionKind.NOOP
            ):
                shown = ""  # progress moves every pass; a line when the status changes
            if self._seen.get(action.key) != (state, shown):
                self._seen[action.key] = (state, shown)
                said = text if text.lower().startswith(state.lower()) else f"{state}: {text}"
                typer.echo(f"{stamp} {action.name}: {said if text else state}")

    def _table(self, plan: Plan) -> Table:
        table = Table(box=None, show_header=True, header_style="bold")
        table.add_column("JOB", no_wrap=True)
        table.add_column("STATE", no_wrap=True)
        table.add_column("PROGRESS", width=26, no_wrap=True)
        table.add_column("WHY", overflow="fold")
        for action in plan.actions:
            counts = action.counts
            if (
                counts is not None
                and counts.total
                and action.status is not None
                and not action.status.final
            ):
                progress: ProgressBar | Text = ProgressBar(
                    total=counts.total, completed=counts.done, width=24
                )
            elif counts is not None and counts.total:
                progress = Text(f"{counts.done:,}/{counts.total:,}")
            else:
                progress = Text("")
            state = _state(action)
            table.add_row(Text(action.name), Text(state), progress, Text(detail(action, state)))
        return table

    def close(self) -> None:
        """Stop the live display (it stays on screen)."""
        if self._live is not None:
            self._live.stop()
            self._live = None
