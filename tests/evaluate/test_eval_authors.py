"""``wsvad evaluate --protocol authors`` equals the benchmarks' own evaluation code, and evaluate
says what it evaluated: estimated frame counts, missing videos (issue #21); the real lists."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from wsvad.cli import run as cli
from wsvad.errors import EXIT_OK, EXIT_PARTIAL

HERE = Path(__file__).resolve().parent
GOLDEN = json.loads((HERE / "data" / "authors_golden.json").read_text(encoding="utf-8"))


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


inputs = _load("wsvad_tests_authors_inputs", HERE / "authors_inputs.py")


@pytest.fixture(autouse=True)
def wide_console(monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _evaluate(scores: dict, dataset: str, root: Path, out: Path, *extra: str) -> int:
    np.savez(out.parent / f"{out.name}-scores.npz", **scores)
    return cli(
        [
            "evaluate",
            "--scores",
            str(out.parent / f"{out.name}-scores.npz"),
            "--dataset",
            dataset,
            "--root",
            str(root),
            "--out",
            str(out),
            "--no-plots",
            "--no-report",
            *extra,
        ]
    )


# dataset -> (alignment, the papers' figure, the code named, test videos without a counted frame
# count: UCF's annotation and XD's lists state none, ShanghaiTech's masks count its 44 anomalous)
AUTHORS = {
    "ucf": ("rtfm-ucf", "auc", "RTFM (tianyu0207/RTFM) test_10crop.py", 290),
    "shanghaitech": ("rtfm", "auc", "RTFM (tianyu0207/RTFM) test_10crop.py", 155),
    "xd": ("rtfm", "pr_auc_trapezoid", "XDVioDet (Roc-Ng/XDVioDet) list/make_gt.py", 800),
}


@pytest.mark.parametrize("dataset", list(AUTHORS))
def test_authors_protocol_equals_the_authors_code(dataset, benchmark_lists, tmp_path, capsys):
    """Golden figures: the authors' scripts run unmodified on the same seeded scores
    (tools/authors_golden.py); the lists alone are given, as the authors' code needs no video."""
    root = inputs.lists_root(dataset, benchmark_lists, tmp_path / "root")
    scores, frames = inputs.make_inputs(dataset, benchmark_lists, root)
    golden = GOLDEN[dataset]
    assert inputs.digest(scores, frames) == golden["inputs_sha256"], "the seeded inputs changed"
    code = _evaluate(scores, dataset, root, tmp_path / "eval", "--protocol", "authors")
    out = capsys.readouterr().out
    assert code == EXIT_OK
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    metrics, protocol = report["metrics"], report["protocol"]
    assert metrics["n_videos"] == golden["videos"]
    for key in ("auc", "pr_auc_trapezoid"):
        if key in golden:
            assert metrics[key] == pytest.approx(golden[key], rel=0, abs=1e-12), key
    if "gt_frames" in golden:  # XDVioDet's gt.npy length = wsvad's aligned frames
        assert metrics["n_frames"] == golden["gt_frames"]
    alignment, figure, code_name, estimated = AUTHORS[dataset]
    assert (protocol["name"], protocol["alignment"], protocol["paper_figure"]) == (
        "authors",
        alignment,
        figure,
    )
    assert protocol["reproduces"].startswith(code_name)
    assert f"protocol: authors' protocol, reproduces {code_name}" in out
    titles = {"auc": "AUC", "pr_auc_trapezoid": "PR-AUC (trapezoid)"}
    assert f"the papers' figure: {titles[figure]} ({figure} in metrics.json)" in out
    assert protocol["estimated_frame_counts"] == estimated
    assert f"frame counts of {estimated} videos are estimates (T × 16): true-frames = rtfm" in out


def test_authors_rules_differ_from_the_default_where_the_authors_code_does(
    benchmark_lists, tmp_path
):
    """UCF: RTFM's GT marks frames past the video normal; wsvad's rtfm rule pads the true-frame
    GT with its last label. Abuse028 (anomalous [165, 241)) given 241 frames and 20 snippets:
    320 aligned frames, 76 anomalous under rtfm-ucf, 76 + 79 padded under rtfm."""
    from wsvad.evaluate.protocol import Protocol, VideoTruth, align_video

    truth = VideoTruth("Abuse028_x264", 241, 1, ("Abuse",), ((165, 241),))
    scores = np.linspace(0, 1, 20, dtype=np.float32)
    ucf = align_video(scores, truth, Protocol("rtfm-ucf"))
    rtfm = align_video(scores, truth, Protocol("rtfm"))
    assert (len(ucf.gt), int(ucf.gt.sum()), int(rtfm.gt.sum())) == (320, 76, 76 + 79)
    assert np.array_equal(ucf.scores, rtfm.scores) and np.array_equal(ucf.scores[::16], scores)
    # Without a counted frame count (authors' protocol): T x 16 frames, intervals past them cut.
    unknown = align_video(scores[:12], truth._replace(n_frames=None), Protocol("rtfm"))
    assert (len(unknown.gt), int(unknown.gt.sum())) == (192, 192 - 165)


def test_authors_protocol_refuses_what_it_cannot_reproduce(benchmark_lists, tmp_path, capsys):
    root = inputs.lists_root("xd", benchmark_lists, tmp_path / "root")
    scores = {"v=S-7rRLrxnVQ__#1_label_B4-0-0": np.full(20, 0.5, np.float32)}
    args = ("--protocol", "authors", "--alignment", "true-frames")
    assert _evaluate(scores, "xd", root, tmp_path / "e1", *args) == 1
    assert (
        "--protocol authors fixes the alignment of xd to rtfm (XDVioDet (Roc-Ng/XDVioDet) "
        "list/make_gt.py + test.py; AP = auc(recall, precision)); drop --alignment true-frames"
    ) in capsys.readouterr().err
    assert _evaluate(scores, "xd", root, tmp_path / "e2", "--protocol", "authors", "--stride", "8")
    assert "repeats each score 16 times, but these scores are 8 frames apart" in (
        capsys.readouterr().err
    )
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "labels.csv").write_text("video,label\n")
    assert _evaluate(
        scores, "folder", tmp_path / "videos", tmp_path / "e3", "--protocol", "authors"
    )
    assert (
        "--protocol authors: no published evaluation code is known for dataset 'folder'; "
        "it is defined for ucf, shanghaitech, xd"
    ) in capsys.readouterr().err


def _xd_on_disk(benchmark_lists, root: Path, write_video) -> list[str]:
    """10 violent test videos whose first interval starts at frame 0 and 10 normal ones, as tiny
    48-frame videos under ROOT/test/, next to the full official lists."""
    records = inputs.labelled_test_records("xd", root)
    violent = [v for v, r in sorted(records.items()) if r.label == 1 and r.intervals[0][0] == 0]
    normal = [v for v, r in sorted(records.items()) if r.label == 0]
    chosen = violent[:10] + normal[:10]
    for i, vid in enumerate(chosen):
        write_video(root / "test" / f"{vid}.mp4", n_frames=48, size=(32, 24), seed=i)
    return chosen


def test_missing_videos_without_a_store_exit_3(benchmark_lists, tmp_path, make_video, capsys):
    """Issue #21.2: the full lists, 20 of the 800 test videos on disk, scores for those 20."""
    root = inputs.lists_root("xd", benchmark_lists, tmp_path / "root")

    def write_video(path, **kwargs):
        return make_video(str(path.relative_to(tmp_path)), **kwargs)

    chosen = _xd_on_disk(benchmark_lists, root, write_video)
    rng = np.random.default_rng(0)
    scores = {vid: rng.random(3).astype(np.float32) for vid in chosen}
    assert _evaluate(scores, "xd", root, tmp_path / "eval") == EXIT_PARTIAL
    captured = capsys.readouterr()
    assert "evaluated 20 of 800 test videos: NOT the full-protocol figures" in captured.err
    assert "780 videos not evaluated as given" in captured.err
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    coverage = report["coverage"]
    assert (coverage["test_videos"], coverage["matched"], len(coverage["problems"])) == (
        800,
        20,
        780,
    )
    assert {p["kind"] for p in coverage["problems"]} == {"missing video"}
    assert report["metrics"]["n_frames"] == 20 * 48  # probed from the 20 tiny videos
    assert report["protocol"]["estimated_frame_counts"] == 0 and "estimates" not in captured.out


def test_standalone_with_an_imported_store_declares_estimates(benchmark_lists, tmp_path, capsys):
    """Issue #21.1: a store imported from the lists alone; ShanghaiTech's normal videos have no
    frame count anywhere (T x 16, estimated), its anomalous ones the length of their mask."""
    root = inputs.lists_root("shanghaitech", benchmark_lists, tmp_path / "root")
    listed = (benchmark_lists / inputs.AUTHORS_LISTS["shanghaitech"]).read_text().splitlines()
    order = inputs.authors_order("shanghaitech", benchmark_lists)  # 44 anomalous, then normal
    masks = benchmark_lists / "shanghaitech/rtfm/test_frame_mask"
    counted = {vid: np.load(masks / f"{vid}.npy").size for vid in order[:2]}
    # id -> T snippets: ceil(mask / 16) for the anomalous ones, as RTFM's features have
    wanted = {vid: -(-n // 16) for vid, n in counted.items()} | {order[44]: 30, order[45]: 25}
    feats = tmp_path / "feats"
    feats.mkdir()
    lines = [line for line in listed if line.rsplit("/", 1)[-1][: -len("_i3d.npy")] in wanted]
    (tmp_path / "test.list").write_text("\n".join(lines) + "\n")
    for vid, n in wanted.items():
        features = np.random.default_rng(n).standard_normal((n, 10, 8)).astype(np.float32)
        np.save(feats / f"{vid}_i3d.npy", features)
    store = tmp_path / "store"
    args = ["--format", "rtfm", "--list", str(tmp_path / "test.list"), "--features-root"]
    args += [str(feats), "--dataset", "shanghaitech", "--root", str(root), "--out", str(store)]
    assert cli(["import", *args]) == EXIT_OK
    scores = {vid: np.linspace(0.1, 0.9, n).astype(np.float32) for vid, n in wanted.items()}
    code = _evaluate(scores, "shanghaitech", root, tmp_path / "eval", "--store", str(store))
    out, err = capsys.readouterr()
    assert code == EXIT_PARTIAL  # the other 195 test videos have no scores
    assert "evaluated 4 of 199 test videos: NOT the full-protocol figures" in err
    assert "frame counts of 2 videos are estimates (T × 16): true-frames = rtfm here" in out
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert report["protocol"]["estimated_frame_counts"] == 2
    assert report["metrics"]["n_frames"] == sum(counted.values()) + 16 * (30 + 25)


def test_compare_shows_the_protocol_of_each_run():
    from wsvad.evaluate.protocol import Protocol
    from wsvad.evaluate.report import compare_table

    authors = Protocol("rtfm", name="authors", reproduces="XDVioDet", paper_figure="auc")
    reports = [
        {"protocol": Protocol().to_json(), "metrics": {"auc": 0.5}},
        {"protocol": authors.to_json(), "metrics": {"auc": 0.75}},
    ]
    header, rows = compare_table(reports, ["ours", "theirs"])
    by_title = {row[0]: row[1:] for row in rows}
    assert header == ["", "ours", "theirs"] and by_title["AUC"] == ["50.00", "75.00"]
    assert by_title["protocol"] == ["wsvad", "authors"]
    assert by_title["alignment"] == ["true-frames", "rtfm"]
