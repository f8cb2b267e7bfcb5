"""Bad input, counted: runs the table of ``tests/test_bad_input.py`` from a fresh clone of this repository's HEAD and
counts the cases that end clean (exit 2, one stderr line, no traceback, nothing changed); then measures what the
prepared-data check (manifest, sizes, sha256) costs next to the search stage on digits.

    python benchmarks/bad_input.py [--skip-table]

Last line: ``RESULT cases=N clean=M manifest_check_s=... search_stage_s=... manifest_check_pct=...``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def run_table(clone: Path) -> tuple[int, int]:
    """Run the bad-input table in ``clone`` with this interpreter; returns (cases, clean)."""
    report = clone / "bad_input.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_bad_input.py",
                    f"--junitxml={report}"], cwd=clone, env={**os.environ, "PYTHONPATH": str(clone)}, check=False)
    cases = ET.parse(report).getroot().iter("testcase")
    outcomes = [not any(child.tag in ("failure", "error", "skipped") for child in case) for case in cases]
    return len(outcomes), sum(outcomes)


def manifest_cost(work: Path) -> tuple[float, float]:
    """Seconds of a cold check of the prepared digits (a new process's first load) and of the whole search stage
    with the shipped params.yaml, both in ``work``."""
    sys.path.insert(0, str(ROOT))
    from nas.config import load_params
    from nas.data import prepare
    from nas.data.prepare import _verified_sha256, load_prepared
    from nas.search.stage import search

    os.chdir(work)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["search"]["study_name"] = f"bad-input-bench-{os.getpid()}"
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    loaded = load_params("params.yaml")
    prepare(loaded.data)
    checks = []
    for _ in range(5):
        _verified_sha256.cache_clear()
        start = time.perf_counter()
        load_prepared(loaded.data.out, loaded.data)
        checks.append(time.perf_counter() - start)
    start = time.perf_counter()
    search(loaded)
    return sorted(checks)[len(checks) // 2], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-table", action="store_true", help="only measure the manifest check")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bad-input-") as tmp:
        cases = clean = 0
        if not args.skip_table:
            clone = Path(tmp) / "clone"
            subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
            cases, clean = run_table(clone)
            print(f"bad-input table: {clean} of {cases} cases clean")
        work = Path(tmp) / "search"
        work.mkdir()
        check_s, search_s = manifest_cost(work)
    pct = 100 * check_s / search_s
    print(f"manifest check {check_s * 1000:.1f} ms (cold, median of 5) against the search stage's {search_s:.1f} s: "
          f"{pct:.3f} %")
    print(f"RESULT cases={cases} clean={clean} manifest_check_s={check_s:.4f} search_stage_s={search_s:.1f} "
          f"manifest_check_pct={pct:.3f}")


if __name__ == "__main__":
    main()
