"""The streaming rule of each detector: what it can say about snippet ``i`` while the video arrives.

The offline score of a snippet (``Detector.score_video`` on the whole video, after the run's bags)
may use snippets that come after it: bags cut over the whole video, attention over all snippets, a
bidirectional RNN. A live stream has no future, so ``wsvad score --stream`` defines the **causal
score** of snippet ``i`` for every detector in one way::

    causal(i) = offline(x[max(0, i - W + 1) : i + 1])[-1]

``offline`` is the run's own offline scoring (bags, pooling, normalisation, crop averaging, the
detector's ``score_video``), applied to the window of the last ``W`` snippets as if that window
were the whole video; ``W = 0`` means all snippets so far. ``x`` are the snippets actually scored
(a snippet dropped because the scorer fell behind is not in any window).

This module is the table of, per detector: the window ``W`` it streams with by default, what its
offline score of snippet ``i`` sees, and so whether the causal score equals the offline one
(``exact``). ``wsvad detectors`` shows :func:`causal_summary`; the stream prints
:func:`causal_rule`'s line in its header. docs/streaming.md has the same table for people.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from wsvad.detectors.registry import detector_class, detector_params_model

DEFAULT_WINDOW = 32  # snippets of context for detectors whose offline score needs the whole video


class CausalRule(NamedTuple):
    """The streaming rule of one trained model."""

    window: int  # W: snippets the causal score of snippet i sees (0 = all snippets so far)
    exact: bool  # the causal score equals the offline score of the same snippet
    offline_sees: str  # what the offline score of snippet i depends on
    stream_sees: str  # what the causal score of snippet i depends on

    def header(self) -> str:
        """One line for the stream's header."""
        if self.exact:
            return f"causal: {self.stream_sees}; equals the offline score"
        return (
            f"causal: {self.stream_sees}; the offline score needs {self.offline_sees}, "
            "so stream and offline scores differ"
        )


def _window_text(window: int) -> str:
    return "all snippets so far" if window == 0 else f"the last {window} snippets"


def _detector_rule(name: str, p: Any) -> tuple[int, str | None]:
    """Default window and what the offline score needs beyond snippets ``<= i`` (None: nothing)."""
    if name == "mil":
        return 1, None  # an MLP per snippet (sec. 3.2)
    if name == "dam":
        if p.test_clips == 0:
            return 2, None  # each clip against its predecessor (eq. 1-2), online
        return 2, f"the whole video (max-pooled into test_clips = {p.test_clips} clips)"
    if name == "salient":
        return p.split_size, (
            f"its bag of split_size = {p.split_size} snippets aligned to the video start "
            "(attention over the bag, sec. 3.2): up to "
            f"{p.split_size - 1} later snippets"
        )
    if name == "claws":
        return p.window, (
            f"its window of {p.window} snippets aligned to the video start (NSM softmax over the "
            f"window, sec. 3.3): up to {p.window - 1} later snippets"
        )
    if name == "joint":
        return DEFAULT_WINDOW, (
            f"the whole video (cut into segments = {p.segments} segments; LSTM and attention, "
            "eq. 1-2, over all of them)"
        )
    if name == "sta":
        return DEFAULT_WINDOW, (
            "the whole video (criss-cross attention over all snippets, eq. 1-3, and a "
            "bidirectional RNN)"
        )
    if name == "rtfm":
        return DEFAULT_WINDOW, (
            "the whole video (non-local attention over all snippets and centred dilated "
            "convolutions in the MTN)"
        )
    raise KeyError(name)


def causal_rule(
    name: str,
    params: dict[str, Any] | None = None,
    score_on: str | None = None,
    bags: int | None = None,
    window: int | None = None,
) -> CausalRule:
    """The streaming rule of detector ``name`` with ``params``, in a run that scores ``score_on``
    (``"bags"``: ``bags`` bags cut over the whole video first); ``window`` overrides the default W.
    """
    p = detector_params_model(name).model_validate(params or {})
    default, offline_future = _detector_rule(name, p)
    if score_on == "bags":
        offline_future = f"the whole video (the run cuts it into {bags or 32} bags first)"
        default = max(default, DEFAULT_WINDOW)
    W = default if window is None else int(window)
    stream_sees = f"the run's offline rule over {_window_text(W)}"
    if offline_future is None:
        offline_sees = "snippet i only" if default == 1 else f"snippets i-{default - 1}..i"
        # Exact when the window holds everything the offline score of snippet i looks at.
        exact = W == 0 or W >= default
    else:
        offline_sees, exact = offline_future, False
    return CausalRule(W, exact, offline_sees, stream_sees)


def causal_summary(name: str) -> str:
    """``wsvad detectors``' ``causal`` column: the rule of ``name`` with its default params and
    train defaults (``score_on: bags`` for mil and dam, as their papers score test videos).
    The column keeps what the offline score needs up to its parenthesis, so the bag count (and
    any other detail given there) is not shown."""
    rule = causal_rule(name, score_on=detector_class(name).train_defaults.get("score_on"))
    head = "exact" if rule.exact else f"offline needs {rule.offline_sees.split(' (')[0]}"
    return f"{head}; stream: {_window_text(rule.window)}"


__all__ = ["DEFAULT_WINDOW", "CausalRule", "causal_rule", "causal_summary"]
