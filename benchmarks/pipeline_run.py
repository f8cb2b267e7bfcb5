"""What `make run` does, timed: `dvc repro` with the shipped params.yaml in a fresh copy of the project.

Prints the wall time of each stage and the whole run, the number of search trials and the test accuracy.
Usage: python benchmarks/pipeline_run.py [--dataset mnist5k]   (from the project root, with the virtualenv's bin on
PATH; --dataset overrides data.dataset of the shipped params, everything else as shipped)
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
FILES = ["nas", "flows", ".dvc/config", ".dvcignore", "dvc.yaml", "params.yaml", "prefect.toml", ".gitignore"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", help="data.dataset for this run (default: as in params.yaml)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        for name in FILES:
            src, dst = ROOT / name, repo / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
        if args.dataset:
            params = yaml.safe_load((repo / "params.yaml").read_text())
            params["data"]["dataset"] = args.dataset
            params["tracking"]["model_name"] = f"nas-{args.dataset}"
            (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
        env_path = f"{Path(sys.executable).parent}:" + __import__("os").environ["PATH"]
        start = time.perf_counter()
        proc = subprocess.Popen(["dvc", "repro"], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**__import__("os").environ, "PATH": env_path})
        stage_start: dict[str, float] = {}
        for line in proc.stdout:
            sys.stdout.write(line)
            if m := re.match(r"Running stage '(\w+)'", line):
                stage_start[m.group(1)] = time.perf_counter()
        assert proc.wait() == 0, "dvc repro failed"
        total = time.perf_counter() - start
        stages = list(stage_start)
        ends = [stage_start[s] for s in stages[1:]] + [start + total]
        metrics = json.loads((repo / "reports/metrics.json").read_text())
        trials = len(pd.read_csv(repo / "reports/trials.csv"))
        print("\n=== make run (dvc repro) on this machine ===")
        for stage, end in zip(stages, ends):
            print(f"stage {stage:<9} {end - stage_start[stage]:7.1f} s")
        print(f"dvc repro total  {total:7.1f} s   (target < 300 s)")
        print(f"search trials    {trials:7d}     (target >= 20)")
        print(f"test accuracy    {metrics['test_accuracy']:7.4f}   (target >= 0.90, dataset {metrics['dataset']})")


if __name__ == "__main__":
    main()
