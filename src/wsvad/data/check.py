"""Validation of a parsed dataset (``wsvad check``) and the gate later stages pass through.

Parsing already reports what the files alone reveal (missing videos, duplicates, annotated videos
not in the test split, unreadable lists). What needs the videos themselves, whether each annotated
interval lies inside its video, is checked here against the video's frame count as extraction and
evaluation count it (:func:`wsvad.data.framecount.frame_count`: images of a frame folder, decoded
frames of a video file). An interval ending past the count is a warning (``frame_labels`` clips
it), one starting past it an error.
Each probed video file is also compared with what its container declares: a truncated file or one
whose container drops frames is a ``suspect-video`` warning (:mod:`wsvad.data.suspects`), the same
finding extraction records in the store.
"""

from __future__ import annotations

import inspect
import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from wsvad.data.framecount import frame_count
from wsvad.data.records import DatasetIndex, Problem, ProblemKind, Severity, VideoRecord
from wsvad.data.registry import get_dataset, load_dataset
from wsvad.data.suspects import probe_suspect
from wsvad.errors import WsvadError

log = logging.getLogger(__name__)

ProbeMode = Literal["annotated", "all", "none"]


def load_with_options(name: str, root: Path | str, **options) -> DatasetIndex:
    """``load_dataset`` with the options that were given (``None`` = not given), checked by name."""
    given = {k: v for k, v in options.items() if v is not None}
    params = inspect.signature(get_dataset(name).load).parameters
    accepted = sorted(k for k in params if k != "root")
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise WsvadError(
            f"dataset {name!r} does not take option(s) {', '.join(unknown)}; "
            f"it takes {', '.join(accepted) or 'none'}"
        )
    return load_dataset(name, root, **given)


def load_labels_only(name: str, root: Path | str, **options) -> DatasetIndex:
    """The dataset's index for features without their videos (imported stores).

    ``require_videos=False`` unless ``options`` say otherwise and the adapter takes it, so the list
    and annotation files alone give labels, splits and frame GT.
    """
    if "require_videos" in inspect.signature(get_dataset(name).load).parameters:
        options.setdefault("require_videos", False)
    return load_dataset(name, root, **options)


def check_frames(
    records: list[VideoRecord],
    mode: ProbeMode = "annotated",
    progress: Callable[[int, int], None] | None = None,
) -> list[Problem]:
    """Problems found by probing the videos: unreadable ones, intervals outside their video, and
    suspect ones (demuxed shorter or longer than their container declares: truncated files,
    dropped frames; see :mod:`wsvad.data.suspects`).

    Args:
        records: the records to check.
        mode: ``"annotated"`` probes test videos with anomalous intervals, ``"all"`` every video
            (also finds unreadable files), ``"none"`` nothing.
        progress: called as ``progress(done, total)``.
    """
    if mode == "none":
        return []
    chosen = [r for r in records if mode == "all" or r.intervals]
    problems: list[Problem] = []
    for done, rec in enumerate(chosen, start=1):
        n, how = frame_count(rec.path)
        if n is None:
            problems.append(
                Problem(
                    "error",
                    "unreadable-video",
                    f"{rec.rel_path}: cannot read the frame count ({how})",
                    rec.video_id,
                    rec.rel_path,
                )
            )
        else:
            problems += _interval_problems(rec, n, how) + _suspect_problems(rec, n)
        if progress is not None:
            progress(done, len(chosen))
    return problems


def _interval_problems(rec: VideoRecord, n: int, how: str) -> list[Problem]:
    """Intervals of ``rec`` that start after its ``n`` frames (error) or end past them."""
    problems = []
    for start, end in rec.intervals or ():
        if start >= n:
            problems.append(
                Problem(
                    "error",
                    "interval-outside-video",
                    f"{rec.rel_path}: interval [{start}, {end}) starts after the last "
                    f"frame ({n} frames, {how})",
                    rec.video_id,
                    rec.rel_path,
                )
            )
        elif end > n:
            problems.append(
                Problem(
                    "warning",
                    "interval-past-end",
                    f"{rec.rel_path}: interval [{start}, {end}) ends {end - n} frame(s) "
                    f"past the video ({n} frames, {how}); clipped when labelling",
                    rec.video_id,
                    rec.rel_path,
                )
            )
    return problems


def _suspect_problems(rec: VideoRecord, n: int) -> list[Problem]:
    """A warning when the ``n`` frames of ``rec`` disagree with what its container declares
    (extraction stores it with a ``suspect`` attr, or fails it with ``--on-suspect fail``)."""
    suspect = probe_suspect(rec.path, frames=n)
    if suspect is None:
        return []
    cause = f" ({suspect['cause']})" if suspect.get("cause") else ""
    message = f"{rec.rel_path}: suspect video{cause}: {suspect['reason']}"
    return [Problem("warning", "suspect-video", message, rec.video_id, rec.rel_path)]


def summarize(problems: list[Problem]) -> list[tuple[Severity, ProblemKind, int, str]]:
    """``(severity, kind, count, first message)`` per kind, errors first."""
    counts = Counter((p.severity, p.kind) for p in problems)
    first: dict[tuple[Severity, ProblemKind], str] = {}
    for p in problems:
        first.setdefault((p.severity, p.kind), p.message)
    order = sorted(counts, key=lambda k: (k[0] != "error", k[1]))
    return [(sev, kind, counts[(sev, kind)], first[(sev, kind)]) for sev, kind in order]


def usable_records(index: DatasetIndex, skip_bad: bool = False) -> list[VideoRecord]:
    """The records a stage may process; refuses a layout with errors unless ``skip_bad``.

    Videos with errors are never in ``index.records`` (the adapters leave them out), so skipping
    means going on without them; errors that name no video (a missing list file) are logged.

    Raises:
        WsvadError: the layout has errors and ``skip_bad`` is false; the message counts them by
            kind.
    """
    errors = index.errors
    if errors and not skip_bad:
        kinds = ", ".join(f"{count} {kind}" for _, kind, count, _ in summarize(errors))
        raise WsvadError(
            f"{index.root}: {len(errors)} dataset error(s) ({kinds}); "
            f"see `wsvad check --dataset {index.name} --root {index.root}`, "
            "or skip the affected videos"
        )
    for p in errors:
        log.warning("skipping: %s", p.message)
    return list(index.records)
