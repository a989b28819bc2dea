"""What train, evaluate and the CLI all say about training runs, defined once: the warning a run
carries and the mean ± std of a figure over seeds.

Train writes both into ``run.json`` and prints them; evaluate repeats the warning next to its
figures and summarises its own figures over seeds the same way. Evaluate may not import train, so
they live here, below both (standard library only).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable

TEST_SELECTION_WARNING = (
    "model selected on the TEST set (test-best): optimistic, not comparable to held-out results"
)


def training_warning(selection: str | None, notes: Iterable[str | None] = ()) -> str | None:
    """The warning of a training run, ``None`` when there is nothing to say.

    Args:
        selection: the run's model-selection mode; ``test-best`` puts the test-selection warning
            first.
        notes: further notes (collapse messages); empty ones are skipped, repeated ones kept once.
    """
    parts = [TEST_SELECTION_WARNING] if selection == "test-best" else []
    parts += [note for note in notes if note]
    return "; ".join(dict.fromkeys(parts)) or None


def mean_std(values: Iterable[float | None]) -> dict[str, float | int | None]:
    """``{"mean", "std", "n"}`` of the values that are not ``None``.

    ``std`` is the sample standard deviation (ddof=1), 0 for one value; mean and std are ``None``
    when no value is given.
    """
    got = [float(v) for v in values if v is not None]
    if not got:
        return {"mean": None, "std": None, "n": 0}
    return {
        "mean": statistics.fmean(got),
        "std": statistics.stdev(got) if len(got) > 1 else 0.0,
        "n": len(got),
    }
