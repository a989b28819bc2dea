"""``wsvad score --stream``: scores of a file and of a loopback network stream equal the causal
definition snippet by snippet; intervals with hysteresis; drops when the scorer is slow; Ctrl-C."""

from __future__ import annotations

import http.server
import json
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from wsvad.cli import run as cli
from wsvad.evaluate.stream import IntervalTracker, StreamOptions, stream_score
from wsvad.pipeline.store import FeatureStore

N_FRAMES, SNIPPET = 40, 4  # 10 snippets of 4 frames at 25 fps


def _extract(video, store, decoder="auto"):
    """`wsvad extract` of one video (random3d backbone, 8-d, 1 crop, 4-frame snippets)."""
    args = ["extract", "--dataset", "folder", "--root", str(video.parent), "--out", str(store)]
    args += ["--crops", "1", "--backbone", "random3d", "--workers", "0", "--resize", "short48"]
    args += ["--decoder", decoder, "--set", "crop_size=32", "--set", "backbone_options.dim=8"]
    args += ["--set", f"snippet_len={SNIPPET}"]
    assert cli(args) == 0
    return FeatureStore.open(store).read(video.stem)  # (N, 1, 8)


def _recipe(score_on="snippets", rule="rtfm", count=32):
    from wsvad.scoring.recipe import ScoringRecipe

    return ScoringRecipe(
        crop_mode="separate", score_on=score_on, bag_rule=rule, bag_pool="mean", bag_count=count
    )


def _make_run(tmp_path, store, name, params, recipe=None):
    from wsvad.detectors import build_detector
    from wsvad.detectors.checkpoint import save_detector

    torch.manual_seed(0)
    detector = build_detector(name, (8,), params).eval()
    run = tmp_path / f"run-{name}"
    meta = {"class_names": ["Normal", "Anomaly"], "scoring": (recipe or _recipe()).to_json()}
    save_detector(run / "model", detector, meta)
    info = {"kind": "single", "store": str(store), "detector": name, "seed": 0}
    (run / "run.json").write_text(json.dumps(info))
    return run, detector


def _definition(detector, x, window, scored=None):
    """causal(i) = offline(x[i - W + 1 : i + 1])[-1] over the scored snippets (all by default)."""
    seq = x if scored is None else x[scored]
    out = []
    with torch.no_grad():
        for i in range(len(seq)):
            win = torch.from_numpy(seq[max(0, i - window + 1) : i + 1, 0])
            out.append(float(detector.score_video(win)[-1]))
    return np.array(out)


@pytest.fixture
def video_store(tmp_path, make_video):
    video = make_video("videos/v.mp4", n_frames=N_FRAMES, size=(64, 48))
    return video, tmp_path / "store", _extract(video, tmp_path / "store")


def _jsonl(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def test_file_stream_equals_the_causal_definition(video_store, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    video, store, x = video_store
    run, claws = _make_run(tmp_path, store, "claws", {"hidden": (16, 8), "window": 4})
    code = cli(["score", "--stream", str(video), "--run", str(run), "--jsonl", "--threshold", "0"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    events = _jsonl(captured.out)  # stdout holds only JSON
    start, snippets = events[0], [e for e in events if e["event"] == "snippet"]
    assert start["event"] == "start" and start["source_kind"] == "file" and start["fps"] == 25
    assert start["window"] == 4 and start["exact"] is False
    assert "the offline score needs its window of 4 snippets" in start["causal"]
    assert [s["index"] for s in snippets] == list(range(10)) and len(x) == 10
    assert [s["start_frame"] for s in snippets[:2]] == [0, 4] and snippets[1]["time"] == 0.32
    scores = np.array([s["score"] for s in snippets])
    np.testing.assert_allclose(scores, _definition(claws, x, 4), rtol=0, atol=1e-5)
    assert all(s["latency"] >= 0 and s["dropped"] == 0 for s in snippets)
    # threshold 0: one interval over the whole stream, ended by the end of the stream
    kinds = [e["event"] for e in events]
    assert kinds == ["start", "snippet", "interval_start"] + ["snippet"] * 9 + [
        "interval_end",
        "end",
    ]
    assert events[-2]["start"] == 0 and events[-2]["time"] == 1.6
    assert events[-1] | {"latency_p50": 0, "latency_p95": 0} == {
        "event": "end",
        "reason": "end of stream",
        "snippets": 10,
        "dropped": 0,
        "latency_p50": 0,
        "latency_p95": 0,
    }
    # people's lines on stderr: the header with the causal rule, intervals, the summary
    err = captured.err.splitlines()
    assert err[0].startswith(f"stream {video} (file, 25 fps), detector claws of {run}; causal:")
    assert err[-1].startswith("end of stream: 10 snippets scored, 0 dropped, latency p50 ")


def test_a_run_scored_on_bags_streams_its_bags_over_the_window(video_store, tmp_path, capsys):
    """The window goes through the run's own scoring (wsvad.scoring.score_features): 4 Sultani
    bags (L2-normalised) cut over the last 6 snippets."""
    from wsvad.scoring.score import score_features

    video, store, x = video_store
    recipe = _recipe("bags", "sultani", 4)
    run, mil = _make_run(tmp_path, store, "mil", {}, recipe)
    assert (
        cli(["score", "--stream", str(video), "--run", str(run), "--jsonl", "--window", "6"]) == 0
    )
    events = _jsonl(capsys.readouterr().out)
    assert events[0]["exact"] is False and events[0]["window"] == 6
    assert "the run cuts it into 4 bags first" in events[0]["causal"]
    scores = [e["score"] for e in events if e["event"] == "snippet"]
    expected = [score_features(mil, recipe, x[max(0, i - 5) : i + 1])[-1] for i in range(10)]
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-5)
    # not the per-snippet scores: the bags (and their L2 norm) made a difference
    assert np.abs(np.array(scores) - _definition(mil, x, 6)).max() > 1e-3


class _Sender(http.server.BaseHTTPRequestHandler):
    """Sends the bytes of an MPEG-TS file as a live stream: chunked, paced, no length."""

    def __init__(self, payload: bytes, *args, **kwargs):
        self.payload = payload
        super().__init__(*args, **kwargs)

    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "video/mp2t")
        self.end_headers()
        chunks = range(0, len(self.payload), 2048)
        for offset in chunks:  # about real time: the stream lasts N_FRAMES / 25 s
            self.wfile.write(self.payload[offset : offset + 2048])
            self.wfile.flush()
            time.sleep(N_FRAMES / 25 / len(chunks))

    def log_message(self, *args):  # keep the test output clean
        pass


def test_loopback_http_stream_equals_the_causal_definition(tmp_path, make_video, capsys):
    """The test encodes an MPEG-TS stream with PyAV and serves it over HTTP on 127.0.0.1."""
    video = make_video("videos/live.ts", n_frames=N_FRAMES, size=(64, 48))
    x = _extract(video, tmp_path / "store", decoder="av")  # PyAV decodes both sides
    run, salient = _make_run(tmp_path, tmp_path / "store", "salient", {"split_size": 3})
    capsys.readouterr()  # the extract's summary
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Sender, video.read_bytes()))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/live.ts"
    try:
        args = ["--run", str(run), "--jsonl", "--timeout", "5", "--buffer", "16"]
        code = cli(["score", "--stream", url, *args])  # buffer > 10 snippets: never drops
    finally:
        server.shutdown()
    captured = capsys.readouterr()
    assert code == 0, captured.err
    events = _jsonl(captured.out)
    assert events[0]["source_kind"] == "network" and events[0]["window"] == 3
    snippets = [e for e in events if e["event"] == "snippet"]
    assert [s["index"] for s in snippets] == list(range(10))
    scores = np.array([s["score"] for s in snippets])
    np.testing.assert_allclose(scores, _definition(salient, x, 3), rtol=0, atol=1e-5)
    assert events[-1]["reason"] == "end of stream" and events[-1]["dropped"] == 0


def _udp_bound(port: int) -> bool:
    """Whether a socket is bound to UDP ``port`` on this machine (Linux: /proc/net/udp)."""
    rows = open("/proc/net/udp").read().splitlines()[1:]
    return any(row.split()[1].endswith(f":{port:04X}") for row in rows)


def _send_udp(payload: bytes, port: int, seconds: float) -> None:
    """Wait until the stream has bound the port, then send MPEG-TS packets over ``seconds``."""
    import socket

    deadline = time.monotonic() + 60
    while not _udp_bound(port) and time.monotonic() < deadline:
        time.sleep(0.02)
    chunks = range(0, len(payload), 1316)  # 7 TS packets per datagram, as ffmpeg sends them
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for offset in chunks:
            sock.sendto(payload[offset : offset + 1316], ("127.0.0.1", port))
            time.sleep(seconds / len(chunks))


@pytest.mark.skipif(not Path("/proc/net/udp").exists(), reason="needs Linux /proc/net/udp")
def test_loopback_udp_stream_ends_after_the_timeout(tmp_path, make_video, capsys):
    """UDP never says that a stream ended: the stream ends after --timeout seconds without data."""
    import socket

    video = make_video("videos/live.ts", n_frames=N_FRAMES, size=(64, 48))
    x = _extract(video, tmp_path / "store", decoder="av")
    run, mil = _make_run(tmp_path, tmp_path / "store", "mil", {})
    capsys.readouterr()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sender = threading.Thread(target=_send_udp, args=(video.read_bytes(), port, 1.6), daemon=True)
    sender.start()
    args = ["--run", str(run), "--jsonl", "--timeout", "2", "--buffer", "16"]
    code = cli(["score", "--stream", f"udp://127.0.0.1:{port}", *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    events = _jsonl(captured.out)
    assert events[0]["source_kind"] == "network" and events[0]["exact"] is True
    snippets = [e for e in events if e["event"] == "snippet"]
    assert [s["index"] for s in snippets] == list(range(10))
    np.testing.assert_allclose([s["score"] for s in snippets], _definition(mil, x, 1), atol=1e-5)
    assert events[-1]["reason"] == "end of stream"


def test_slow_scorer_drops_snippets_and_scores_the_rest_causally(
    video_store, tmp_path, monkeypatch
):
    import wsvad.evaluate.stream as stream

    video, store, x = video_store
    run, claws = _make_run(tmp_path, store, "claws", {"hidden": (16, 8), "window": 4})
    real = stream._features_fn

    def slow_features(chain, precision):
        features = real(chain, precision)

        def slow(snippet):
            time.sleep(0.4)  # a snippet arrives every 0.16 s: the scorer falls behind
            return features(snippet)

        return slow

    monkeypatch.setattr(stream, "_features_fn", slow_features)
    events = []
    options = StreamOptions(realtime=True, buffer=1, threshold=1.0)
    summary = stream_score(str(video), run, options, events.append)
    scored = [s["index"] for s in summary.snippets]
    assert summary.dropped > 0 and len(scored) + summary.dropped == 10
    assert scored == sorted(scored) and scored[-1] == 9  # the newest snippet is kept
    assert events[0]["source_kind"] == "file (real time)"
    # the window holds the snippets actually scored
    expected = _definition(claws, x, 4, scored=scored)
    np.testing.assert_allclose([s["score"] for s in summary.snippets], expected, atol=1e-5)
    assert summary.snippets[-1]["dropped"] == summary.dropped == events[-1]["dropped"]


def test_intervals_with_hysteresis_and_minimum_duration():
    tracker = IntervalTracker(threshold=0.6, hysteresis=0.2, min_duration=1.0)
    scores = [0.1, 0.7, 0.5, 0.45, 0.3, 0.9, 0.2, 0.65, 0.7, 0.61, 0.62, 0.3]
    events = []
    for i, s in enumerate(scores):  # snippet i covers [0.4 i, 0.4 (i + 1)) seconds
        events += [(i, e) for e in tracker.update(i, 0.4 * i, 0.4 * (i + 1), s)]
    events += [(len(scores), e) for e in tracker.finish()]
    # 0.7 opens at 0.4 s; 0.5 and 0.45 stay above 0.4 (hysteresis), 1.2 s long at snippet 3; 0.3
    # closes it. 0.9 alone lasts 0.4 s < 1 s: never reported. 0.65.. opens at 2.8 s, is reported at
    # snippet 9 (1.2 s) and closed by 0.3 at snippet 11.
    assert [(i, e["event"]) for i, e in events] == [
        (3, "interval_start"),
        (4, "interval_end"),
        (9, "interval_start"),
        (11, "interval_end"),
    ]
    assert events[0][1] == {
        "event": "interval_start",
        "time": 0.4,
        "snippet": 3,
        "score": 0.45,
        "threshold": 0.6,
        "off_threshold": pytest.approx(0.4),
        "min_duration": 1.0,
    }
    assert events[1][1]["time"] == pytest.approx(1.6) and events[1][1]["peak"] == 0.7
    assert events[3][1]["start"] == pytest.approx(2.8) and events[3][1]["duration"] == (
        pytest.approx(1.6)
    )
    # without hysteresis the first interval ends at 0.5 before lasting 1 s: not reported
    plain = IntervalTracker(threshold=0.6, min_duration=1.0)
    starts = [e for i, s in enumerate(scores) for e in plain.update(i, 0.4 * i, 0.4 * i + 0.4, s)]
    assert [e["time"] for e in starts if e["event"] == "interval_start"] == [pytest.approx(2.8)]


def test_ctrl_c_ends_the_stream_with_exit_130(video_store, tmp_path, capsys, monkeypatch):
    import wsvad.evaluate.stream as stream

    video, store, _ = video_store
    run, _ = _make_run(tmp_path, store, "mil", {})
    calls = []

    def interrupted(chain, precision):
        def features(snippet):
            calls.append(1)
            if len(calls) == 3:
                raise KeyboardInterrupt
            return np.zeros((1, 8), np.float32)

        return features

    monkeypatch.setattr(stream, "_features_fn", interrupted)
    args = ["--run", str(run), "--jsonl", "--threshold", "0"]
    assert cli(["score", "--stream", str(video), *args]) == 130
    captured = capsys.readouterr()
    events = _jsonl(captured.out)
    # the open interval is closed at the interruption, then the end event says why it ended
    kinds = ["start", "snippet", "interval_start", "snippet", "interval_end", "end"]
    assert [e["event"] for e in events] == kinds
    assert events[-1]["reason"] == "interrupted" and events[-1]["snippets"] == 2
    err = captured.err.splitlines()
    assert err[0].startswith("stream ") and [e for e in err if "interrupted" in e] == [err[-1]]
    assert err[-1] == "interrupted; run the same command again to resume"  # cli.md's one line


def test_stream_usage_errors(video_store, tmp_path, capsys):
    video, store, _ = video_store
    run, _ = _make_run(tmp_path, store, "mil", {})
    assert cli(["score", str(video), "--stream", str(video), "--run", str(run)]) == 1
    assert "give a VIDEO to score offline or --stream SOURCE, not both" in capsys.readouterr().err
    assert cli(["score", "--run", str(run)]) == 1
    assert "give a VIDEO to score offline or --stream SOURCE to score live" in (
        capsys.readouterr().err
    )
    assert cli(["score", "--stream", "/dev/video99", "--run", str(run)]) == 1
    assert "error: /dev/video99: no such capture device" in capsys.readouterr().err
    # a character device is opened as a capture device (v4l2); /dev/null is not a camera
    assert cli(["score", "--stream", "/dev/null", "--run", str(run), "--timeout", "2"]) == 1
    assert "error: /dev/null: cannot open (OSError: [Errno 25] Inappropriate ioctl" in (
        capsys.readouterr().err
    )
    url = "http://127.0.0.1:9/none.ts"  # the discard port: nothing listens
    assert cli(["score", "--stream", url, "--run", str(run), "--timeout", "2"]) == 1
    assert f"error: {url}: cannot open (" in capsys.readouterr().err


def test_the_run_rule_follows_the_runs_scoring_recipe(tmp_path):
    from wsvad.evaluate.stream import run_rule

    bags = {"detector": "mil", "scoring": {"score_on": "bags", "bag_count": 16}}
    rule = run_rule(tmp_path, bags, None)
    assert rule.window == 32 and not rule.exact
    assert rule.offline_sees == "the whole video (the run cuts it into 16 bags first)"
    (tmp_path / "run.json").write_text(json.dumps({"score_on": "snippets", "T": 32}))
    assert run_rule(tmp_path, {"detector": "mil"}, None).exact  # a run.json without a recipe
    assert run_rule(tmp_path, {"detector": "salient", "params": {"split_size": 5}}, 0).window == 0


@pytest.mark.slow
def test_a_real_ctrl_c_stops_a_live_stream_with_exit_130(video_store, tmp_path, make_video):
    """SIGINT to a `wsvad score --stream --realtime` process: one line, exit 130, and the JSON
    stream ends with its end event."""
    import os
    import signal
    import subprocess
    import sys

    video, store, _ = video_store
    run, _ = _make_run(tmp_path, store, "mil", {})
    long_video = make_video("long/long.mp4", n_frames=400, size=(64, 48))  # 16 s, 100 snippets
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    args = ["score", "--stream", str(long_video), "--run", str(run), "--jsonl", "--realtime"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsvad", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    first = [proc.stdout.readline(), proc.stdout.readline()]  # the start and a first snippet
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    events = _jsonl("".join(first) + rest)
    assert events[0]["event"] == "start" and events[1]["event"] == "snippet"
    assert events[-1]["event"] == "end" and events[-1]["reason"] == "interrupted"
    assert events[-1]["snippets"] < 100  # it stopped long before the end of the video
    assert [line for line in err.splitlines() if "interrupted" in line] == [err.splitlines()[-1]]


def test_the_buffer_drops_the_oldest_when_live_and_waits_otherwise():
    from wsvad.evaluate.stream_sources import SnippetBuffer, SnippetItem

    live = SnippetBuffer(2, drop=True)
    for i in range(5):
        live.put(SnippetItem(i, np.zeros(1), 0.0))
    live.close()
    assert live.dropped == 3 and [live.get().index, live.get().index, live.get()] == [3, 4, None]
    file = SnippetBuffer(1, drop=False)
    file.put(SnippetItem(0, np.zeros(1), 0.0))
    waiting = threading.Thread(target=file.put, args=(SnippetItem(1, np.zeros(1), 0.0),))
    waiting.start()
    time.sleep(0.3)
    assert waiting.is_alive() and file.dropped == 0  # a file waits for room
    assert file.get().index == 0
    waiting.join(timeout=5)
    assert file.get().index == 1
    blocked = threading.Thread(target=file.put, args=(SnippetItem(2, np.zeros(1), 0.0),))
    file.put(SnippetItem(3, np.zeros(1), 0.0))
    blocked.start()
    file.close()  # the scorer stopped: a reader waiting for room returns
    blocked.join(timeout=5)
    assert not blocked.is_alive()
    error = SnippetBuffer(1, drop=True)
    error.close(RuntimeError("decoder broke"))
    with pytest.raises(RuntimeError, match="decoder broke"):
        error.get()


def test_people_lines_for_intervals_in_seconds_and_in_frames():
    from wsvad.cli.score_stream import describe_event
    from wsvad.evaluate.stream import Timeline

    assert Timeline(16, 8, 25.0).span(3) == (0.96, 1.6)
    assert Timeline(16, 8, None).span(3) == (24.0, 40.0)  # no frame rate: frame numbers
    start = {"event": "interval_start", "time": 0.96, "snippet": 3, "score": 0.91, "threshold": 0.5}
    assert describe_event(start) == "anomaly from 0.96 s (score 0.910 >= 0.5)"
    end = {"event": "interval_end", "time": 40.0, "start": 24.0, "duration": 16.0, "peak": 0.97}
    assert describe_event(end, "frames") == "anomaly 24.00-40.00 ended (16.00, peak 0.970)"


def test_offline_score_of_a_url_equals_the_file_and_names_a_refused_one(
    tmp_path, make_video, capsys
):
    """`wsvad score URL` (offline, no --stream) reads the URL through the live scorer's opener:
    the same snippet scores as the file itself; a URL nothing answers is one line, exit 1."""
    from wsvad.evaluate.score_video import score_video

    video = make_video("videos/live.ts", n_frames=N_FRAMES, size=(64, 48))
    _extract(video, tmp_path / "store", decoder="av")
    run, _ = _make_run(tmp_path, tmp_path / "store", "mil", {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Sender, video.read_bytes()))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/live.ts"
    try:
        from_url = score_video(url, run, out=tmp_path / "url", decoder="av")
    finally:
        server.shutdown()
    from_file = score_video(str(video), run, out=tmp_path / "file", decoder="av")
    assert len(from_url.snippets) == len(from_file.snippets) == N_FRAMES // SNIPPET
    np.testing.assert_array_equal(
        [s.score for s in from_url.snippets], [s.score for s in from_file.snippets]
    )
    capsys.readouterr()
    refused = "http://127.0.0.1:9/none.ts"  # the discard port: nothing listens
    assert cli(["score", refused, "--run", str(run)]) == 1
    err = capsys.readouterr().err
    assert f"error: {refused}: cannot open (" in err and "Traceback" not in err
