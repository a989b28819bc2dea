"""ROC, PR and per-video score timelines (matplotlib, Agg backend, files written atomically)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wsvad.atomic import atomic_path


def _figure(width: float = 5.0, height: float = 4.5):
    import matplotlib

    matplotlib.use("Agg", force=True)  # files only: no display on clusters and CI
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(figsize=(width, height), dpi=100)


def _save(plt, fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return path


def plot_roc(
    curves: list[tuple[str, np.ndarray, np.ndarray]], path: Path, title: str = "Frame-level ROC"
) -> Path:
    """One line per ``(label, fpr, tpr)``, e.g. one per seed; the chance diagonal dashed."""
    plt, fig, ax = _figure()
    for label, fpr, tpr in curves:
        ax.plot(fpr, tpr, lw=1.4, label=label)
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="grey")
    ax.set(
        xlabel="false positive rate",
        ylabel="true positive rate",
        xlim=(0, 1),
        ylim=(0, 1.01),
        title=title,
    )
    ax.legend(loc="lower right", fontsize=8)
    return _save(plt, fig, path)


def plot_pr(
    curves: list[tuple[str, np.ndarray, np.ndarray]],
    path: Path,
    base_rate: float | None = None,
    title: str = "Frame-level precision-recall",
) -> Path:
    """One step line per ``(label, recall, precision)``; the share of anomalous frames dashed."""
    plt, fig, ax = _figure()
    for label, recall, precision in curves:
        ax.step(recall, precision, where="post", lw=1.4, label=label)
    if base_rate is not None:
        ax.axhline(
            base_rate,
            ls="--",
            lw=0.8,
            color="grey",
            label=f"anomalous frames {100 * base_rate:.1f}%",
        )
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.01), title=title)
    ax.legend(loc="upper right", fontsize=8)
    return _save(plt, fig, path)


def gt_runs(gt: np.ndarray) -> list[tuple[int, int]]:
    """Half-open ``[start, end)`` runs of ones.

    >>> gt_runs(np.array([0, 1, 1, 0, 1]))
    [(1, 3), (4, 5)]
    """
    padded = np.concatenate(([0], np.asarray(gt, dtype=np.int8), [0]))
    edges = np.flatnonzero(np.diff(padded))
    # Starts and ends alternate (the padding closes every run), so the two halves pair up.
    return [(int(s), int(e)) for s, e in zip(edges[::2], edges[1::2], strict=True)]


def _line_colours(avoid: str) -> list[str]:
    """Distinct colours for score lines, without ``avoid`` (the shading's)."""
    cycle = ["tab:blue", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive"]
    cycle += ["tab:cyan", "tab:gray", "tab:orange", "tab:red"]
    return [c for c in cycle if c != avoid] * 10  # seeds beyond ten repeat colours


def plot_timeline(
    path: Path,
    gt: np.ndarray,
    series: dict[str, np.ndarray],
    title: str,
    threshold: float | None = None,
    fps: float | None = None,
    shade_label: str = "ground truth",
    shade_color: str = "tab:red",
) -> Path:
    """Frame scores of one video (one line per series, e.g. per seed), the runs of ``gt`` shaded.

    The score lines never take the shade's colour (red is ground truth; ``wsvad score`` shades
    its own prediction in another colour), so what the model said and what is true never look
    alike.
    """
    plt, fig, ax = _figure(8.0, 2.6)
    scale = 1.0 / fps if fps else 1.0
    for i, (start, end) in enumerate(gt_runs(gt)):
        ax.axvspan(
            start * scale,
            end * scale,
            color=shade_color,
            alpha=0.18,
            lw=0,
            label=shade_label if i == 0 else None,
        )
    for (label, scores), color in zip(series.items(), _line_colours(shade_color), strict=False):
        ax.plot(np.arange(len(scores)) * scale, scores, lw=1.2, label=label, color=color)
    if threshold is not None:
        ax.axhline(threshold, ls=":", lw=0.8, color="black", label=f"threshold {threshold:g}")
    ax.set(
        xlabel="seconds" if fps else "frame",
        ylabel="anomaly score",
        ylim=(-0.02, 1.02),
        title=title,
    )
    ax.set_xlim(0, max(1, len(gt)) * scale)
    ax.legend(loc="upper right", fontsize=7)
    return _save(plt, fig, path)
