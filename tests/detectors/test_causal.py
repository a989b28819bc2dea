"""The streaming rule of every detector (wsvad.detectors.causal): the causal score of snippet i is
the offline score of the window of the last W snippets, and the table's ``exact`` claim is checked
against the detector: exact rules reproduce the offline scores, the others differ from them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wsvad.detectors import build_detector, detector_class, list_detectors
from wsvad.detectors.causal import DEFAULT_WINDOW, CausalRule, causal_rule, causal_summary
from wsvad.evaluate.stream import CausalScorer

N_SNIPPETS, CROPS = 12, 2
# Small windows keep the test fast; they stay below N so that windows really slide.
SMALL = {"salient": {"split_size": 4}, "claws": {"window": 4}}
SMALL_WINDOW = {"joint": 4, "sta": 4, "rtfm": 4}


def _detector(name: str, **params):
    torch.manual_seed(0)
    cls = detector_class(name)
    merged = {**cls.example_params, **params}
    return build_detector(name, cls.example_feature_shape, merged).eval(), merged


def _offline(detector):
    """The offline rule without bags: ``score_video`` crop by crop, crops averaged."""

    def scores(x: np.ndarray) -> np.ndarray:
        per_crop = [detector.score_video(torch.from_numpy(x[:, c])).numpy() for c in range(CROPS)]
        return np.mean(per_crop, axis=0)

    return scores


def _features(name: str) -> np.ndarray:
    shape = detector_class(name).example_feature_shape
    rng = np.random.default_rng(1)
    return rng.normal(size=(N_SNIPPETS, CROPS, *shape)).astype(np.float32)


def _stream(offline, x: np.ndarray, window: int) -> np.ndarray:
    scorer = CausalScorer(offline, window)
    return np.array([scorer.push(x[i]) for i in range(len(x))])


def test_every_registered_detector_has_a_rule():
    assert list_detectors() == ["claws", "dam", "joint", "mil", "rtfm", "salient", "sta"]
    for name in list_detectors():
        assert causal_summary(name)  # KeyError for a detector missing from the table


@pytest.mark.parametrize("name", ["claws", "dam", "joint", "mil", "rtfm", "salient", "sta"])
def test_stream_equals_the_causal_definition_snippet_by_snippet(name):
    detector, params = _detector(name, **SMALL.get(name, {}))
    rule = causal_rule(name, params, window=SMALL_WINDOW.get(name))
    offline = _offline(detector)
    x = _features(name)
    streamed = _stream(offline, x, rule.window)
    W = rule.window
    definition = [offline(x[max(0, i - W + 1) : i + 1])[-1] for i in range(N_SNIPPETS)]
    np.testing.assert_allclose(streamed, definition, rtol=0, atol=1e-6)
    full = offline(x)
    if rule.exact:  # the window holds all the offline score of snippet i looks at
        np.testing.assert_allclose(streamed, full, rtol=0, atol=1e-6)
    else:  # the offline score looks further: the stream cannot reproduce it
        assert np.abs(streamed - full).max() > 1e-4
    # With every snippet so far in the window, the last snippet sees the whole video.
    assert _stream(offline, x, 0)[-1] == pytest.approx(full[-1], abs=1e-6)


def test_window_defaults_follow_the_detectors_own_windows():
    assert causal_rule("mil") == causal_rule("mil", window=1)
    assert causal_rule("mil").window == 1 and causal_rule("mil").exact
    assert causal_rule("dam").window == 2 and causal_rule("dam").exact
    assert not causal_rule("dam", {"test_clips": 16}).exact
    assert causal_rule("salient").window == 28 and not causal_rule("salient").exact
    assert causal_rule("salient", {"split_size": 9}).window == 9
    assert causal_rule("claws").window == 64 and causal_rule("claws", {"window": 16}).window == 16
    for name in ("joint", "sta", "rtfm"):
        rule = causal_rule(name)
        assert rule.window == DEFAULT_WINDOW and not rule.exact
        assert rule.offline_sees.startswith("the whole video")
    # A run scored on bags cut over the whole video needs the whole video whatever the detector.
    bags = causal_rule("mil", score_on="bags", bags=32)
    assert not bags.exact and bags.window == DEFAULT_WINDOW
    assert bags.offline_sees == "the whole video (the run cuts it into 32 bags first)"
    assert causal_rule("mil", window=5).exact and not causal_rule("dam", window=1).exact


def test_salient_and_claws_stream_their_own_bag_and_window():
    """Independent of score_video: salient's stream score is the video score of the last l
    snippets as one bag (sec. 3.2); claws' is the last snippet of one NSM window (sec. 3.3)."""
    salient, _ = _detector("salient", split_size=6)
    x = _features("salient")
    streamed = _stream(_offline(salient), x, causal_rule("salient", {"split_size": 6}).window)
    with torch.no_grad():
        for i in range(5, N_SNIPPETS):
            bag = torch.from_numpy(x[i - 5 : i + 1]).transpose(0, 1)  # (C, 6, D)
            assert streamed[i] == pytest.approx(float(salient.video_scores(bag).mean()), abs=1e-6)
    claws, params = _detector("claws", window=4)
    x = _features("claws")
    b = params["window"]
    streamed = _stream(_offline(claws), x, causal_rule("claws", params).window)
    with torch.no_grad():
        for i in range(N_SNIPPETS):
            rows = torch.from_numpy(x[max(0, i - b + 1) : i + 1]).transpose(0, 1)  # (C, <=b, D)
            assert streamed[i] == pytest.approx(float(claws(rows)[:, -1].mean()), abs=1e-6)


def test_header_says_whether_the_stream_equals_the_offline_score():
    assert causal_rule("mil").header() == (
        "causal: the run's offline rule over the last 1 snippets; equals the offline score"
    )
    assert (
        causal_rule("rtfm", window=0)
        .header()
        .startswith(
            "causal: the run's offline rule over all snippets so far; the offline score needs the "
            "whole video (non-local attention"
        )
    )
    assert causal_summary("sta") == "offline needs the whole video; stream: the last 32 snippets"
    assert causal_summary("salient") == (
        "offline needs its bag of split_size = 28 snippets aligned to the video start; "
        "stream: the last 28 snippets"
    )
    # mil and dam train (and score test videos) on bags by default
    assert causal_summary("dam") == "offline needs the whole video; stream: the last 32 snippets"
    assert causal_summary("mil") == causal_summary("dam")
    assert causal_rule("dam").exact  # on raw snippets (score_on: snippets) dam is online


def test_header_and_summary_in_full(monkeypatch):
    assert causal_rule("rtfm", window=0).header() == (
        "causal: the run's offline rule over all snippets so far; the offline score needs the "
        "whole video (non-local attention over all snippets and centred dilated convolutions in "
        "the MTN), so stream and offline scores differ"
    )
    assert causal_summary("claws") == (
        "offline needs its window of 64 snippets aligned to the video start; "
        "stream: the last 64 snippets"
    )
    # A detector whose train defaults score raw snippets with an online rule is summarised "exact".
    defaults = {k: v for k, v in detector_class("dam").train_defaults.items() if k != "score_on"}
    monkeypatch.setattr(detector_class("dam"), "train_defaults", defaults)
    assert causal_summary("dam") == "exact; stream: the last 2 snippets"


def test_every_rule_in_full():
    stream = "the run's offline rule over the last {} snippets".format
    salient = (
        "its bag of split_size = {0} snippets aligned to the video start (attention over the bag, "
        "sec. 3.2): up to {1} later snippets"
    ).format
    claws = (
        "its window of {0} snippets aligned to the video start (NSM softmax over the window, "
        "sec. 3.3): up to {1} later snippets"
    ).format
    joint = (
        "the whole video (cut into segments = {} segments; LSTM and attention, eq. 1-2, over all "
        "of them)"
    ).format
    sta = (
        "the whole video (criss-cross attention over all snippets, eq. 1-3, and a bidirectional "
        "RNN)"
    )
    rtfm = (
        "the whole video (non-local attention over all snippets and centred dilated convolutions "
        "in the MTN)"
    )
    assert causal_rule("mil") == CausalRule(1, True, "snippet i only", stream(1))
    assert causal_rule("dam") == CausalRule(2, True, "snippets i-1..i", stream(2))
    assert causal_rule("salient") == CausalRule(28, False, salient(28, 27), stream(28))
    assert causal_rule("salient", {"split_size": 9}) == CausalRule(
        9, False, salient(9, 8), stream(9)
    )
    assert causal_rule("claws") == CausalRule(64, False, claws(64, 63), stream(64))
    assert causal_rule("joint") == CausalRule(32, False, joint(32), stream(32))
    assert causal_rule("joint", {"segments": 16}).offline_sees == joint(16)
    assert causal_rule("sta") == CausalRule(32, False, sta, stream(32))
    assert causal_rule("rtfm") == CausalRule(32, False, rtfm, stream(32))
    clips = "the whole video (max-pooled into test_clips = 16 clips)"
    assert causal_rule("dam", {"test_clips": 16}) == CausalRule(2, False, clips, stream(2))
    # bags cut over the whole video: W is at least DEFAULT_WINDOW (32 bags unless told)
    bags = "the whole video (the run cuts it into {} bags first)".format
    assert causal_rule("mil", score_on="bags") == CausalRule(32, False, bags(32), stream(32))
    assert causal_rule("claws", score_on="bags", bags=8) == CausalRule(
        64, False, bags(8), stream(64)
    )
    # W = 0 (all snippets so far) or any W >= what the offline score looks at is exact
    everything = "the run's offline rule over all snippets so far"
    assert causal_rule("dam", window=0) == CausalRule(0, True, "snippets i-1..i", everything)
    assert causal_rule("dam", window=3) == CausalRule(3, True, "snippets i-1..i", stream(3))
    assert causal_rule("dam", window=1).exact is False


def test_a_registered_detector_missing_from_the_table_is_a_key_error(monkeypatch):
    from wsvad.detectors import registry

    monkeypatch.setitem(registry._REGISTRY, "newcomer", registry._REGISTRY["mil"])
    with pytest.raises(KeyError) as raised:
        causal_rule("newcomer")
    assert raised.value.args == ("newcomer",)
