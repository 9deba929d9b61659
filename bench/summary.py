"""Print the figures the benchmarks recorded (``$BENCH_RESULTS``, JSON lines) as one table.

.venv/bin/python bench/summary.py RESULTS.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from common import machine_details


def main() -> None:
    rows = [json.loads(line) for line in Path(sys.argv[1]).read_text().splitlines() if line]
    print("\n== Summary")
    for key, value in machine_details().items():
        print(f"  {key:<9} {value}")
    print()
    header = ("benchmark", "figure", "value", "baseline", "ratio")
    print("  {:<10} {:<46} {:>16}  {:>22}  {:>6}  target".format(*header))
    for row in rows:
        value = f"{row['value']:.2f} {row['unit']}"
        baseline = ""
        if row["baseline_value"] is not None:
            baseline = f"{row['baseline']} {row['baseline_value']:.2f}"
        ratio = "" if row["ratio"] is None else f"{row['ratio']:.2f}"
        verdict = {True: "OK", False: "MISSED", None: ""}[row["met"]]
        target = f"{row['target']} {verdict}".strip()
        print(
            f"  {row['bench']:<10} {row['figure'][:46]:<46} {value:>16}  {baseline[:22]:>22}"
            f"  {ratio:>6}  {target}"
        )
    missed = [row for row in rows if row["met"] is False]
    print(f"\n  {len(missed)} of {sum(row['met'] is not None for row in rows)} targets missed")


if __name__ == "__main__":
    main()
