"""Progress bars for long work (rich), with room for live metrics such as accuracy and samples/s."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

T = TypeVar("T")


class StatusColumn(ProgressColumn):
    """Text read from `status()` at every refresh (rich redraws from its own thread), so a state that
    arises inside a long step, such as an outage ("waiting for <board> since HH:MM:SS"), shows while it lasts."""

    def __init__(self, status: Callable[[], str]) -> None:
        super().__init__()
        self.status = status

    def render(self, task: Any) -> Text:
        try:
            text = self.status()
        except Exception:  # noqa: BLE001 - a status that cannot be read now must not break the bar
            text = ""
        return Text(text, style="bold yellow")


def system_status(system: Any) -> Callable[[], str]:
    """The live status of a system for a progress bar: its `waiting` text (a Device or DevicePool, also
    through a Counting wrapper) while its boards are down, else ""."""
    return lambda: str(getattr(system, "waiting", "") or "")


class Bar:
    """An iterable progress bar; `note(**metrics)` shows metrics beside it while it runs, and `status()`
    (if given) is read live at each refresh."""

    def __init__(self, items: Iterable[T], description: str, show: bool, initial: int, total: int | None,
                 status: Callable[[], str] | None = None, console: Console | None = None) -> None:
        self._items = items
        self._status, self._console = status, console
        self._description = description
        self._show = show
        self._initial = initial
        self._total = total if total is not None else (len(items) if hasattr(items, "__len__") else None)  # type: ignore[arg-type]
        self._progress: Progress | None = None
        self._task = None

    def note(self, **metrics: float | str) -> None:
        if self._progress is not None and self._task is not None:
            text = "  ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())
            self._progress.update(self._task, metrics=text)

    def __iter__(self) -> Iterator[T]:
        if not self._show:
            yield from self._items
            return
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}"),
            *([StatusColumn(self._status)] if self._status is not None else []),
        )
        with Progress(*columns, transient=False, console=self._console) as self._progress:
            total = None if self._total is None else self._total + self._initial
            self._task = self._progress.add_task(self._description, total=total, completed=self._initial, metrics="")
            for item in self._items:
                yield item
                self._progress.advance(self._task)
        self._progress = None


def progress(
    items: Iterable[T], description: str, *, show: bool = True, initial: int = 0, total: int | None = None,
    status: Callable[[], str] | None = None, console: Console | None = None,
) -> Bar:
    """Wrap `items` in a progress bar (or pass them through when `show` is false); `status()` is shown
    live beside it (e.g. `system_status(system)`: which board an outage waits for, since when)."""
    return Bar(items, description, show, initial, total, status, console)
