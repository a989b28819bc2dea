"""Golden figures of ``--protocol authors``: the authors' evaluation code run on seeded scores.

    .venv/bin/python tools/authors_golden.py --rtfm RTFM_CHECKOUT --xdviodet XDVIODET_CHECKOUT \\
        --lists /work/shared/data/benchmark-lists --out tests/evaluate/data/authors_golden.json

RTFM_CHECKOUT is tianyu0207/RTFM, XDVIODET_CHECKOUT Roc-Ng/XDVioDet (their code is run, never
copied into wsvad). The inputs are ``tests/evaluate/authors_inputs.py``'s. What is run, unmodified
except for the file paths its constants name:

* RTFM ``list/make_gt_ucf.py`` on feature files of the generated snippet counts (its list of POSIX
  paths, as on the authors' machine: the committed Windows list splits to no name), with RTFM's
  ``list/Matlab_formate`` annotations; then ``test_10crop.test`` (args.dataset = ucf) on the
  generated scores.
* RTFM ``list/make_gt_sh.py`` (its ``gt`` compared with the real ``list/gt-sh.npy``: equal, which
  checks the generated snippet counts), then ``test_10crop.test`` (shanghai) with the real
  ``gt-sh.npy``.
* XDVioDet ``list/make_gt.py`` (with a ``cv2`` stand-in that reports the generated frame counts)
  and ``test.test`` on 5 equal crops of logits ``log(s / (1 - s))``: its sigmoid preserves the
  order and the ties of the scores ``s`` that wsvad gets, and both figures depend on nothing else.

The model is a stand-in returning the generated scores; only the evaluation code is the authors'.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def _cwd(path: Path):
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _run_script(path: Path, substitutions: dict[str, str], extra: dict | None = None) -> dict:
    """Execute an authors' script with its path constants replaced; returns its globals."""
    source = path.read_text(encoding="utf-8")
    for old, new in substitutions.items():
        if old not in source:
            raise SystemExit(f"{path}: {old!r} not found; the script changed")
        source = source.replace(old, new)
    namespace = {"__name__": "__main__", **(extra or {})}
    exec(compile(source, str(path), "exec"), namespace)  # noqa: S102 - the authors' script
    return namespace


class _Model:
    """Stands in for the trained network: returns the next video's prepared logits."""

    def __init__(self, outputs):
        self.outputs = iter(outputs)

    def eval(self):
        return self

    def __call__(self, **_):
        return next(self.outputs)


class _Viz:
    def __init__(self):
        self.values = {}

    def plot_lines(self, name, value):
        self.values[name] = float(value)

    def lines(self, *_args, **_kwargs):
        pass


def _rtfm_test(rtfm: Path, dataset: str, scores: dict, work: Path) -> dict:
    import torch

    sys.path.insert(0, str(rtfm))
    test_10crop = _load("rtfm_test_10crop", rtfm / "test_10crop.py")
    sys.path.pop(0)
    outputs = [
        (None,) * 6
        + (torch.from_numpy(s).reshape(1, -1, 1),)
        + (None,) * 3  # logits are output 6 of 10
        for s in scores.values()
    ]
    inputs = [torch.zeros(1, len(s), 1, 1) for s in scores.values()]
    viz = _Viz()
    args = types.SimpleNamespace(dataset="shanghai" if dataset == "shanghaitech" else "ucf")
    with _cwd(work):
        auc = test_10crop.test(inputs, _Model(outputs), args, viz, torch.device("cpu"))
    return {"auc": float(auc), "pr_auc_trapezoid": viz.values["pr_auc"]}


def _ucf(rtfm: Path, scores: dict, work: Path) -> dict:
    import torch

    feats = work / "features"
    feats.mkdir()
    lines = []
    for vid, s in scores.items():
        # make_gt_ucf.py reads a pickled list of tensors and counts its snippets.
        tensors = np.empty(len(s), dtype=object)
        tensors[:] = [torch.zeros(1) for _ in range(len(s))]
        np.save(feats / f"{vid}_i3d.npy", tensors, allow_pickle=True)
        lines.append(f"{feats}/{vid}_i3d.npy\n")
    (work / "ucf-i3d-test.list").write_text("".join(lines))
    (work / "list").mkdir()
    with _cwd(work):
        _run_script(
            rtfm / "list/make_gt_ucf.py",
            {
                '"/home/yu/yu_ssd/i3d_features_test/"': repr(str(feats)),
                "'/home/yu/PycharmProjects/DeepMIL-master/list/Matlab_formate/'": repr(
                    str(rtfm / "list/Matlab_formate") + "/"
                ),
                "'/home/yu/PycharmProjects/DeepMIL-master/list/gt-ucf.npy'": repr(
                    str(work / "list/gt-ucf.npy")
                ),
            },
        )
    return _rtfm_test(rtfm, "ucf", scores, work)


def _shanghaitech(rtfm: Path, scores: dict, work: Path) -> dict:
    feats = work / "features"
    feats.mkdir()
    (work / "shanghai-i3d-test.list").write_text(
        "".join(f"{feats}/{vid}_i3d.npy\n" for vid in scores)
    )
    for vid, s in scores.items():
        np.save(feats / f"{vid}_i3d.npy", np.zeros((len(s), 1, 1), np.float32))
    with _cwd(work):
        made = _run_script(
            rtfm / "list/make_gt_sh.py",
            {
                '"/home/yu/yu_ssd/SH_Test_center_crop_i3d/"': repr(str(feats)),
                "'test_frame_mask/'": repr(str(rtfm / "list/test_frame_mask") + "/"),
            },
        )
    real = np.load(rtfm / "list/gt-sh.npy")
    if not np.array_equal(np.asarray(made["gt"], dtype=float), real):
        raise SystemExit("make_gt_sh.py on the generated snippet counts differs from gt-sh.npy")
    (work / "list").mkdir()
    np.save(work / "list/gt-sh.npy", real)
    return _rtfm_test(rtfm, "shanghaitech", scores, work)


def _xd(xdv: Path, lists: Path, scores: dict, frames: dict, work: Path) -> dict:
    import torch

    class VideoCapture:  # cv2.VideoCapture(path).get(7) = CAP_PROP_FRAME_COUNT
        def __init__(self, path):
            self.name = Path(path).name[: -len(".mp4")]

        def get(self, prop):
            assert prop == 7
            return float(frames[self.name])

    sys.modules["cv2"] = types.SimpleNamespace(VideoCapture=VideoCapture)
    with _cwd(work):
        _run_script(
            xdv / "list/make_gt.py",
            {
                "'rgb_test.list'": repr(str(lists / "xd_violence/rgb_test.list")),
                "'xx/annotations.txt'": repr(str(lists / "xd_violence/annotations.txt")),
            },
        )
        gt = np.load("gt.npy")
    sys.path.insert(0, str(xdv))
    xd_test = _load("xdviodet_test", xdv / "test.py")
    sys.path.pop(0)
    outputs = []
    for s in scores.values():
        logits = torch.from_numpy(np.log(s / (1 - s)).astype(np.float32)).reshape(1, -1, 1)
        outputs.append((logits.repeat(5, 1, 1), logits.repeat(5, 1, 1)))
    inputs = [torch.zeros(5, len(s), 1) for s in scores.values()]
    pr_auc, _ = xd_test.test(inputs, _Model(outputs), torch.device("cpu"), gt)
    return {"pr_auc_trapezoid": float(pr_auc), "gt_frames": int(gt.size)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtfm", type=Path, required=True, help="tianyu0207/RTFM checkout")
    parser.add_argument("--xdviodet", type=Path, required=True, help="Roc-Ng/XDVioDet checkout")
    parser.add_argument("--lists", type=Path, required=True, help="shared benchmark-lists folder")
    parser.add_argument("--out", type=Path, required=True, help="golden JSON to write")
    parser.add_argument("--rtfm-commit", help="commit of the RTFM checkout, recorded")
    parser.add_argument("--xdviodet-commit", help="commit of the XDVioDet checkout, recorded")
    args = parser.parse_args()
    inputs = _load("authors_inputs", REPO / "tests/evaluate/authors_inputs.py")
    golden = {
        "command": " ".join(["python", "tools/authors_golden.py", *sys.argv[1:]]),
        "code": {
            "tianyu0207/RTFM": args.rtfm_commit,
            "Roc-Ng/XDVioDet": args.xdviodet_commit,
        },
    }
    for dataset in ("ucf", "shanghaitech", "xd"):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            root = inputs.lists_root(dataset, args.lists, work / "root")
            scores, frames = inputs.make_inputs(dataset, args.lists, root)
            if dataset == "ucf":
                figures = _ucf(args.rtfm.resolve(), scores, work)
            elif dataset == "shanghaitech":
                figures = _shanghaitech(args.rtfm.resolve(), scores, work)
            else:
                figures = _xd(args.xdviodet.resolve(), args.lists, scores, frames, work)
        golden[dataset] = {
            "seed": inputs.SEEDS[dataset],
            "inputs_sha256": inputs.digest(scores, frames),
            "videos": len(scores),
            "snippets": int(sum(len(s) for s in scores.values())),
            **figures,
        }
        print(dataset, golden[dataset], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(golden, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
