"""Progress for long work, on a terminal only.

`--json` output and output to a pipe or file get none: a machine reads those, and a
spinner's control characters would corrupt them. Progress goes to stderr.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

Step = Callable[[str], None]


def progress_wanted(*, as_json: bool, console: Console | None = None) -> bool:
    """A person watches: stderr is a terminal and the report is not JSON."""
    return not as_json and (console or Console(stderr=True)).is_terminal


@contextmanager
def steps(title: str, total: int | None, *, enabled: bool) -> Iterator[Step]:
    """Yield `step(label)`: call it as each unit of work starts (a host, a check group).

    Disabled, `step` does nothing, so callers need no branch of their own.
    """
    if not enabled:
        yield lambda _label: None
        return
    counted = (BarColumn(), TextColumn("{task.completed}/{task.total}")) if total else ()
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        *counted,
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    started = 0
    with progress:
        task = progress.add_task(title, total=total)

        def step(label: str) -> None:
            nonlocal started
            if started:
                progress.advance(task)
            started += 1
            progress.update(task, description=f"{title}: {label}")

        yield step
        progress.update(task, completed=total if total is not None else started)
