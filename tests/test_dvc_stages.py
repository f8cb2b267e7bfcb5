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


def paths(entries: list) -> set[str]:
    """The paths of a stage's deps or outs (an entry with options is a one-key mapping)."""
    return {e if isinstance(e, str) else next(iter(e)) for e in entries}


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
    deps = paths(spec["deps"])
    uncovered = sorted(f for f in imported - {"nas/__init__.py", "flows/__init__.py"}
                       if not any(f == d or f.startswith(d.rstrip("/") + "/") for d in deps))
    assert not uncovered, f"stage {stage} imports code its deps do not list: {uncovered}"


def test_the_pipeline_flow_runs_every_stage_flow_after_the_stages_it_reads_from(monkeypatch):
    """The pipeline's body (``.fn``: no Prefect engine) with each stage flow replaced by a recorder: every dvc stage
    runs once, on the params path given, after each stage whose outs its deps list, and the last one's result is
    the pipeline's."""
    import flows.pipeline

    calls = []
    for stage in STAGES:
        monkeypatch.setattr(flows.pipeline, f"{stage}_flow",
                            lambda path, stage=stage: calls.append((stage, path)) or {"stage": stage})
    params = str(ROOT / "params.yaml")  # the pipeline reads it before any stage
    result = flows.pipeline.pipeline.fn(params)
    ran = [stage for stage, _ in calls]
    assert sorted(ran) == sorted(STAGES) and {path for _, path in calls} == {params}
    reads = {(a, b) for a in STAGES for b in STAGES if paths(STAGES[a].get("outs", [])) & paths(STAGES[b]["deps"])}
    assert reads and all(ran.index(a) < ran.index(b) for a, b in reads), (ran, sorted(reads))
    assert result == {"stage": ran[-1]}
