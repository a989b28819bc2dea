"""Print the mutation score of `mutmut run` per target and fail on any unexplained survivor.

Reads `mutmut results --all true` (run from the project root after `mutmut run`) and the list of
equivalent mutants in docs/testing.md (every `wsvad....__mutmut_N` name written in backticks under
the heading "## Equivalent mutants"). Per target module it prints killed / survived / equivalent /
no tests / unrun (not checked yet) / other (timeout, suspicious...), and the score
killed / (total - equivalent). Exit status 1 when a mutant that is
not killed (survived, no tests, suspicious, timeout, not checked) is missing from the equivalent
list, 0 otherwise.

    python tools/mutation_score.py [--results FILE] [--docs docs/testing.md] [PREFIX ...]

PREFIX restricts the count to mutant names starting with it (e.g. ``wsvad.evaluate.metrics``).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

MUTANT = re.compile(r"(wsvad(?:\.\w+)+__mutmut_\d+)")
RESULT_LINE = re.compile(r"^\s*(wsvad(?:\.\w+)+__mutmut_\d+): (.+?)\s*$")
DETECTED = {"killed", "caught by type check"}


def parse_results(text: str) -> dict[str, str]:
    """``{mutant name: status}`` from the lines ``    name: status`` that mutmut prints."""
    return {m[1]: m[2] for line in text.splitlines() if (m := RESULT_LINE.match(line))}


def equivalent_mutants(docs: str) -> set[str]:
    """Mutant names in backticks in the "## Equivalent mutants" section of docs/testing.md."""
    section = re.search(r"^## Equivalent mutants\s*$(.*?)(?=^## |\Z)", docs, re.M | re.S)
    if section is None:
        return set()
    return set(MUTANT.findall(section[1]))


def target_of(name: str) -> str:
    """The module of a mutant: mutmut names them ``module.x_function__mutmut_N`` and
    ``module.xǁClassǁmethod__mutmut_N``."""
    return name.split(".x", 1)[0]


def score_table(status: dict[str, str], equivalent: set[str]) -> tuple[list[str], list[str]]:
    """The per-target table and the unexplained (neither killed nor listed) mutants."""
    counts: dict[str, Counter] = defaultdict(Counter)
    unexplained = []
    for name, st in sorted(status.items()):
        c = counts[target_of(name)]
        c["total"] += 1
        if st in DETECTED:
            c["killed"] += 1
        elif name in equivalent:
            c["equivalent"] += 1
        else:
            kind = st if st in ("survived", "no tests", "not checked") else "other"
            c[kind] += 1
            unexplained.append(f"{name}: {st}")
    header = f"{'target':36} {'total':>6} {'killed':>6} {'surv.':>6} {'equiv.':>6} {'no t.':>6}"
    lines = [header + f" {'unrun':>6} {'other':>6} {'score':>7}"]
    for target, c in sorted(counts.items()) + [("all", sum(counts.values(), Counter()))]:
        scored = c["total"] - c["equivalent"]
        score = f"{100 * c['killed'] / scored:6.1f}%" if scored else "    n/a"
        kinds = ("total", "killed", "survived", "equivalent", "no tests", "not checked", "other")
        cells = [c[k] for k in kinds]
        lines.append(f"{target:36} " + " ".join(f"{v:6d}" for v in cells) + f" {score}")
    return lines, unexplained


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefixes", nargs="*", help="count only mutants starting with these")
    parser.add_argument("--results", type=Path, help="saved `mutmut results --all true` output")
    parser.add_argument("--docs", type=Path, default=Path("docs/testing.md"))
    args = parser.parse_args(argv)
    if args.results:
        text = args.results.read_text()
    else:
        mutmut = Path(sys.executable).with_name("mutmut")
        cmd = [str(mutmut), "results", "--all", "true"]
        text = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    status = parse_results(text)
    if args.prefixes:
        status = {k: v for k, v in status.items() if k.startswith(tuple(args.prefixes))}
    if not status:
        print("no mutants in the results: run `mutmut run` first", file=sys.stderr)
        return 1
    lines, unexplained = score_table(status, equivalent_mutants(args.docs.read_text()))
    print("\n".join(lines))
    if unexplained:
        print(f"\n{len(unexplained)} not killed, not listed as equivalent in {args.docs}:")
        print("\n".join(f"  {u}" for u in unexplained))
        print("see each with `mutmut show NAME`; kill it with a test or explain it in the docs")
        return 1
    print("\nno unexplained survivor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
