"""``python -m nas.cli`` run as a user runs it: every bad input is one stderr line and exit code 2, with no traceback,
and nothing is created or changed in the working directory.

Each case is (command line, files in an empty working directory, the start of the expected error line).
"""

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nas.tabular import NB201_CIFAR10

TABLE_LINES = NB201_CIFAR10.read_text().splitlines(keepends=True)
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


CASES = [
    # argparse's own errors
    pytest.param([], {}, "the following arguments are required: command; see nas --help", id="no-command"),
    pytest.param(["bench", "--runs", "abc"], {}, "argument --runs: invalid int value: 'abc'; see nas bench --help",
                 id="runs-not-a-number"),
    pytest.param(["bench", "--bogus"], {}, "unrecognized arguments: --bogus; see nas --help", id="unknown-option"),
    pytest.param(["predict", "--input", "x.npy"], {}, "the following arguments are required: --model; "
                 "see nas predict --help", id="predict-without-model"),
    pytest.param(["validate", "--params", "missing.yaml"], {}, "missing.yaml: no such params file", id="no-params"),
    # nas bench
    pytest.param(["bench", "--table", "t.csv", "--runs", "1"], {"t.csv": TABLE_LINES[0].encode()},
                 f"t.csv: holds 0 of the 15,625 architectures of the NB201 space (missing, e.g., {ALL_NONE}); "
                 f"a table needs one row for every architecture", id="bench-header-only-table"),
    pytest.param(["bench", "--table", "t.csv", "--runs", "1"], {"t.csv": "".join(TABLE_LINES[:21]).encode()},
                 "t.csv: holds 20 of the 15,625 architectures of the NB201 space (missing, e.g., ",
                 id="bench-partial-table"),
    pytest.param(["bench", "--runs", "1", "--out", "f/o"], {"f": b"x"}, "--out f/o: f is a file, not a folder",
                 id="bench-out-under-a-file"),
    pytest.param(["bench", "--runs", "0"], {}, "--runs 0: must be a whole number >= 1", id="bench-runs-0"),
    # nas predict: the inputs are checked before MLflow is touched, and no store is created
    pytest.param(["predict", "--model", "models:/m@champion", "--input", "x.npy"],
                 {"x.npy": _npy(np.full((8, 8), np.nan))},
                 "--input x.npy: holds NaN or infinite values; pixels must be whole numbers 0..255", id="predict-nan"),
    pytest.param(["predict", "--model", "models:/m@champion", "--input", "x.npy"],
                 {"x.npy": _npy(np.zeros((8, 8), np.uint8))},
                 "--tracking-uri sqlite:///mlflow.db: no MLflow store there; name the store the model was registered "
                 "in (--tracking-uri URI or MLFLOW_TRACKING_URI)", id="predict-no-store"),
]


def _snapshot(folder: Path) -> dict[Path, tuple[int, int]]:
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.mark.parametrize("argv,files,message", CASES)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, argv, files, message):
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    before = _snapshot(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    result = subprocess.run([sys.executable, "-m", "nas.cli", *argv], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300)
    err = result.stderr.splitlines()
    assert result.returncode == 2 and result.stdout == "", result.stderr
    assert len(err) == 1 and err[0].startswith(f"nas: error: {message}"), result.stderr
    assert _snapshot(tmp_path) == before
