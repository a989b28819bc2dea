"""One progress reporter for every long command (extract, train, import, check, synth).

On a terminal it is a rich bar on stderr. When stderr is not a terminal (nohup, SLURM, CI logs) a
bar would print nothing useful, so it writes one plain line every ``--progress-every`` seconds,
and one with the final figures when a phase or the command ends (not when it fails: the error is
then the last line)::

    extract: 12/40 videos (30%), 0.41 videos/s, ETA 1m08s, 5,120 frame-crops/s
"""

from __future__ import annotations

import time
from collections.abc import Callable

from wsvad.cli.app import err_console, progress_bar

DEFAULT_EVERY_S = 30.0


def format_duration(seconds: float) -> str:
    """``75`` -> ``'1m15s'``; hours when long (``'2h03m'``).

    >>> format_duration(75), format_duration(7380), format_duration(4.2)
    ('1m15s', '2h03m', '4s')
    """
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def progress_line(
    label: str,
    unit: str,
    done: int,
    total: int | None,
    elapsed: float,
    info: str = "",
    start: int = 0,
) -> str:
    """One log line: done/total, percentage, rate and ETA (``total`` unknown: done and rate).
    ``start``: what was already done when the clock started (a resumed run's steps).

    >>> progress_line("train", "steps", 250, 1000, 50.0, "loss 0.31")
    'train: 250/1000 steps (25%), 5.00 steps/s, ETA 2m30s, loss 0.31'
    >>> progress_line("train", "steps", 750, 1000, 50.0, start=500)
    'train: 750/1000 steps (75%), 5.00 steps/s, ETA 50s'
    """
    rate = (done - start) / elapsed if elapsed > 0 else 0.0
    parts = [f"{label}: {done}/{total} {unit} ({100 * done / total:.0f}%)" if total else ""]
    if not total:
        parts = [f"{label}: {done} {unit}"]
    parts.append(f"{rate:.2f} {unit}/s")
    if total and rate > 0 and done < total:
        parts.append(f"ETA {format_duration((total - done) / rate)}")
    elif total and done >= total:
        parts.append(f"done in {format_duration(elapsed)}")
    if info:
        parts.append(info)
    return ", ".join(parts)


class Reporter:
    """``update(done, total, info=..., phase=...)`` from a command's progress callback.

    A new ``phase`` (e.g. ``bag cache`` then ``train``) restarts the rate and the ETA.
    """

    def __init__(
        self,
        label: str,
        unit: str,
        every: float = DEFAULT_EVERY_S,
        *,
        terminal: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.label, self.unit, self.every, self.clock = label, unit, every, clock
        self.terminal = err_console.is_terminal if terminal is None else terminal
        self.phase = label
        self.state: tuple[int, int | None, str] | None = None  # done, total, info
        self.began = self.last_line = 0.0
        self.start = 0  # done at the start of the phase
        self.printed: tuple[str, tuple[int, int | None, str]] | None = None  # the last line's
        self._bar = None
        self._task = None

    def __enter__(self) -> Reporter:
        if self.terminal:
            self._bar = progress_bar("{task.description}", "{task.fields[info]}", transient=False)
            self._bar.__enter__()
        return self

    def update(
        self,
        done: int,
        total: int | None = None,
        info: str = "",
        phase: str | None = None,
        unit: str | None = None,
    ) -> None:
        now = self.clock()
        new_phase = self.state is None or (phase is not None and phase != self.phase)
        if new_phase:
            if self.state is not None and not self.terminal:
                self._line(now)  # close the previous phase with its last figures
            # the first line comes ``every`` seconds in: a quick command prints only its end
            self.phase, self.began, self.last_line = phase or self.phase, now, now
            self.start = done
            self.unit = unit or self.unit
        self.state = (done, total, info)
        if self.terminal:
            self._update_bar(done, total, info)
        elif now - self.last_line >= self.every:
            self._line(now)

    def _update_bar(self, done: int, total: int | None, info: str) -> None:
        if self._task is None:
            self._task = self._bar.add_task(self.phase, total=total, info=info)
        self._bar.update(self._task, description=self.phase, completed=done, total=total, info=info)

    def _line(self, now: float) -> None:
        done, total, info = self.state
        elapsed = now - self.began
        line = progress_line(self.phase, self.unit, done, total, elapsed, info, self.start)
        err_console.print(line, markup=False, highlight=False, soft_wrap=True)
        self.last_line, self.printed = now, (self.phase, self.state)

    def __exit__(self, exc_type, *rest) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, *rest)
        elif (
            self.state is not None
            and exc_type is None
            and self.printed
            != (
                self.phase,
                self.state,
            )
        ):
            self._line(self.clock())  # the final figures, unless the last line showed them
