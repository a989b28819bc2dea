"""Size and time of the HTML report of a UCF-Crime-size test split (290 videos, ~1.1 M frames).

Uses the synthetic scores of benchmarks/evaluate.py (snippet scores, so timelines are exact steps)
and prints report_data.json's size, report.html's size for one and two runs, and the seconds each
takes to write. Run: ``python benchmarks/report.py``.
"""

from __future__ import annotations

import importlib.util
import tempfile
import time
from pathlib import Path

from wsvad.evaluate.html_report import write_html_report
from wsvad.evaluate.protocol import Protocol, per_video_table
from wsvad.evaluate.report import METRICS_FILE, build_report, write_json_atomic
from wsvad.evaluate.report_data import REPORT_DATA_FILE, write_report_data
from wsvad.evaluate.run import evaluate_scores


def _synthetic_ucf():
    spec = importlib.util.spec_from_file_location(
        "wsvad_bench_evaluate", Path(__file__).with_name("evaluate.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.synthetic_ucf, ["Normal", *module.CLASSES]


def _evaluation(out: Path, seed: int) -> tuple[float, float]:
    """metrics.json + report_data.json of one synthetic UCF-size run; seconds for per_video_table
    (made for per_video.csv anyway, and passed on) and for the rest of the report data."""
    synthetic_ucf, names = _synthetic_ucf()
    truths, scores = synthetic_ucf(seed)
    protocol = Protocol()
    pooled, figures = evaluate_scores(scores, truths, protocol, names)
    source = {"run": str(out.parent), "store": None, "dataset": None, "root": None}
    report = build_report(
        metrics=figures,
        per_seed=None,
        protocol=protocol.to_json(),
        config={},
        config_hash="benchmark",
        source=source,
        seeds=[seed],
        model_selection="last",
        coverage={"test_videos": len(truths), "matched": len(truths), "problems": []},
        plots=[],
    )
    write_json_atomic(out / METRICS_FILE, report)
    start = time.perf_counter()
    tables = {"": per_video_table(pooled)}
    table_seconds = time.perf_counter() - start
    start = time.perf_counter()
    write_report_data(out, {"": pooled}, protocol.threshold, source, tables)
    return table_seconds, time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        evals = [Path(tmp) / f"run{k}" / "eval" for k in (0, 1)]
        seconds = [_evaluation(out, k) for k, out in enumerate(evals)]
        data_mb = (evals[0] / REPORT_DATA_FILE).stat().st_size / 1e6
        print(f"per_video_table (per_video.csv's rows, reused): {seconds[0][0]:.2f} s")
        print(f"report_data.json: {data_mb:.2f} MB, written in {seconds[0][1]:.2f} s more")
        for n in (1, 2):
            start = time.perf_counter()
            out = write_html_report(evals[:n], Path(tmp) / f"report{n}.html")
            seconds = time.perf_counter() - start
            size = out.stat().st_size / 1e6
            print(f"report.html of {n} run(s): {size:.2f} MB, written in {seconds:.2f} s")


if __name__ == "__main__":
    main()
