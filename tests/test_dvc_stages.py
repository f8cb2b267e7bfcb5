"""dvc.yaml stays honest: each stage runs its flow, and lists in deps all the project code that flow imports and
in params the sections it reads."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]

PROBE = """
import importlib, json, sys
from nas.config import load_params
importlib.import_module(sys.argv[1])
load_params("params.yaml")  # validation imports too
print(json.dumps(sorted(m.__file__ for m in list(sys.modules.values()) if getattr(m, "__file__", None))))
"""


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_runs_its_flow_and_lists_the_code_it_imports(stage):
    spec = STAGES[stage]
    assert spec["cmd"] == f"python -m flows.{stage}"
    out = subprocess.run([sys.executable, "-c", PROBE, f"flows.{stage}"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    code = [Path(f).resolve() for f in json.loads(out)]
    imported = {f.relative_to(ROOT).as_posix() for f in code if f.is_relative_to(ROOT / "nas") or f.is_relative_to(ROOT / "flows")}
    assert f"flows/{stage}.py" in imported
    deps = [d if isinstance(d, str) else next(iter(d)) for d in spec["deps"]]
    uncovered = sorted(f for f in imported - {"nas/__init__.py", "flows/__init__.py"}
                       if not any(f == d or f.startswith(d.rstrip("/") + "/") for d in deps))
    assert not uncovered, f"stage {stage} imports code its deps do not list: {uncovered}"


def test_the_pipeline_flow_chains_every_stage_flow():
    source = (ROOT / "flows" / "pipeline.py").read_text()
    for stage in STAGES:
        assert f"{stage}_flow(params_path)" in source
