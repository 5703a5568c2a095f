"""Progress bars for long work (rich), with room for live metrics such as accuracy and samples/s."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")


class Bar:
    """An iterable progress bar; `note(**metrics)` shows metrics beside it while it runs."""

    def __init__(self, items: Iterable[T], description: str, show: bool, initial: int, total: int | None) -> None:
        self._items = items
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
        )
        with Progress(*columns, transient=False) as self._progress:
            total = None if self._total is None else self._total + self._initial
            self._task = self._progress.add_task(self._description, total=total, completed=self._initial, metrics="")
            for item in self._items:
                yield item
                self._progress.advance(self._task)
        self._progress = None


def progress(
    items: Iterable[T], description: str, *, show: bool = True, initial: int = 0, total: int | None = None
) -> Bar:
    """Wrap `items` in a progress bar (or pass them through when `show` is false)."""
    return Bar(items, description, show, initial, total)
