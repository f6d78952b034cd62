"""The wheel ships the product and nothing of its scaffolding, and the demo runs from an installed wheel, away from
the source tree."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCAFFOLDING = ("moto", "standalone", "synthetic_log", "local_server", "harness", "driver_process")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "--wheel-dir", str(out), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (found,) = out.glob("pipeline_opt-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                           str(wheel)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return target


def _run_installed(installed: Path, cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m pipeline_opt.app.cli ARGS`` with the installed copy first on the path, outside the checkout."""
    env = {**os.environ, "PYTHONPATH": str(installed)}
    return subprocess.run([sys.executable, "-m", "pipeline_opt.app.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_the_wheel_holds_the_package_and_no_scaffolding(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    modules = [n for n in names if n.endswith(".py")]
    assert all(n.startswith("pipeline_opt/") for n in modules)
    assert not [n for n in modules if any(s in n for s in SCAFFOLDING)]
    assert [n for n in modules if n.endswith("demo.py")] == []  # showcases live in app/demo/, one per part
    assert {"pipeline_opt/py.typed", "pipeline_opt/log4j2.properties", "pipeline_opt/app/demo/run.py"} <= set(names)


def test_the_installed_wheel_runs_away_from_the_source_tree(installed, tmp_path):
    done = subprocess.run([sys.executable, "-c", "import pipeline_opt; print(pipeline_opt.__file__)"], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(installed)}, capture_output=True, text=True)
    assert done.stdout.strip() == str(installed / "pipeline_opt" / "__init__.py")
    assert _run_installed(installed, tmp_path, "--help").returncode == 0


@pytest.mark.slow
def test_demo_runs_from_the_installed_wheel(installed, tiny_lakehouse, tmp_path):
    import shutil

    lakehouse = tmp_path / "lakehouse"
    shutil.copytree(tiny_lakehouse[0], lakehouse)
    done = _run_installed(installed, tmp_path, "demo", "--out", str(lakehouse), "--json", timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert not result["failed"]
    assert set(result["showcases"]) == {"tables", "maintenance", "loader", "training", "cache", "storage", "monitor"}
    assert "skipped" in result["showcases"]["storage"]  # no object store was given
    assert result["showcases"]["cache"]["requests"] > 0
    assert Path(result["showcases"]["monitor"]["report"]).is_file()
