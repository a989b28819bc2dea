"""tools/mutation_score.py: the score per target and the exit status on unexplained survivors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

TOOL = Path(__file__).resolve().parents[1] / "tools" / "mutation_score.py"
_spec = importlib.util.spec_from_file_location("mutation_score", TOOL)
score = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(score)

RESULTS = """\
    wsvad.evaluate.metrics.x_compress_runs__mutmut_1: killed
    wsvad.evaluate.metrics.x_compress_runs__mutmut_2: killed
    wsvad.evaluate.metrics.x_compress_runs__mutmut_3: survived
    wsvad.detectors.mil.xǁMilǁforward__mutmut_1: killed
    wsvad.detectors.mil.xǁMilǁforward__mutmut_2: no tests
"""
DOCS = """\
# Testing
## Equivalent mutants
| `wsvad.evaluate.metrics.x_compress_runs__mutmut_3` | the message is never shown |
## Deliberate bugs
`wsvad.detectors.mil.xǁMilǁforward__mutmut_2` is mentioned here, outside the list.
"""


def test_scores_per_target_and_names_the_unexplained(tmp_path):
    (tmp_path / "results.txt").write_text(RESULTS)
    (tmp_path / "testing.md").write_text(DOCS)
    status = score.parse_results(RESULTS)
    assert status["wsvad.detectors.mil.xǁMilǁforward__mutmut_2"] == "no tests"
    assert score.equivalent_mutants(DOCS) == {"wsvad.evaluate.metrics.x_compress_runs__mutmut_3"}
    lines, unexplained = score.score_table(status, score.equivalent_mutants(DOCS))
    assert unexplained == ["wsvad.detectors.mil.xǁMilǁforward__mutmut_2: no tests"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    # total killed survived equivalent no-tests unrun other score: 2 / (3 - 1) and 1 / 2
    assert rows["wsvad.evaluate.metrics"] == ["3", "2", "0", "1", "0", "0", "0", "100.0%"]
    assert rows["wsvad.detectors.mil"] == ["2", "1", "0", "0", "1", "0", "0", "50.0%"]
    assert rows["all"] == ["5", "3", "0", "1", "1", "0", "0", "75.0%"]
    args = ["--results", str(tmp_path / "results.txt"), "--docs", str(tmp_path / "testing.md")]
    assert score.main(args) == 1
    assert score.main([*args, "wsvad.evaluate"]) == 0
