"""The dependency contract with the Databricks runtimes of conf/runtimes: installing what the bundle installs on a
runtime changes none of the runtime's pinned packages, and a runtime outside the tested set is named in a warning.

The resolution runs pip itself (``--dry-run --report``) against an environment that holds exactly the runtime's
packages at their pinned versions, for the runtime's Python and platform, so pip answers what a cluster library
install would do there: any pinned package it would install is a package it would change.
"""
from __future__ import annotations

import configparser
import json
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from pipeline_opt.spark import TESTED_RUNTIMES, UntestedRuntimeWarning, check_runtime, runtime_key

ROOT = Path(__file__).resolve().parents[1]
RUNTIMES = sorted((ROOT / "conf" / "runtimes").glob("*.txt"))
NEVER_INSTALLED = {"pyspark", "delta-spark", "py4j"}  # the runtime's own Spark: pip must never bring another
# The pinned packages a runtime cannot keep, each with why, and how far it may move. Every deltalake 1.x (our
# Delta-log reader) needs deprecated>=1.2.18 (16.4 / 17.3 ship 1.2.14 / 1.2.13): it moves within its patch line
# (install_requires caps it at <1.3, so wrapt stays), the move Databricks' own published constraints
# (``deprecated~=1.2.14``) allow. deltalake 1.1.4 (DBR 18) refuses tables with deletion vectors, which Databricks
# enables by default: it moves within 1.x. Any other change fails.
ALLOWED_MOVES = {"deprecated": ("deltalake 1.x requires deprecated>=1.2.18", 2),
                 "deltalake": ("deltalake 1.1 cannot open tables with deletion vectors", 1)}


def read_runtime(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(``# key: value`` header facts, pins name → version) of one constraints file."""
    meta, pins = {}, {}
    for line in path.read_text().splitlines():
        if m := re.fullmatch(r"# (runtime|spark_version|python|spark|scala): (.+)", line):
            meta[m.group(1)] = m.group(2).strip()
        elif line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return meta, pins


def install_requires() -> list[Requirement]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return [Requirement(r) for r in cfg["options"]["install_requires"].split("\n") if r.strip()]


def bundle_libraries() -> tuple[list[str], list[str]]:
    """(wheel globs, PyPI requirements) that the bundle's tasks install on their compute."""
    wheels, pypi = [], []
    for f in sorted((ROOT / "conf" / "databricks").rglob("*.yml")):
        for job in yaml.safe_load(f.read_text())["resources"]["jobs"].values():
            libraries = [lib for task in job["tasks"] for lib in task.get("libraries", [])]
            libraries += [{"dep": d} for env in job.get("environments", []) for d in env["spec"]["dependencies"]]
            for lib in libraries:
                if "whl" in lib or str(lib.get("dep", "")).endswith(".whl"):
                    wheels.append(lib.get("whl") or lib["dep"])
                elif "pypi" in lib:
                    pypi.append(lib["pypi"]["package"])
                elif "dep" in lib:
                    pypi.append(lib["dep"])
    return wheels, pypi


def test_each_runtime_file_names_its_runtime_and_the_tested_set_matches():
    keys = set()
    for path in RUNTIMES:
        meta, pins = read_runtime(path)
        assert {"runtime", "spark_version", "python", "spark"} <= set(meta), path.name
        assert {"pandas", "numpy", "pyarrow", "matplotlib", "pyyaml", "pyspark"} <= set(pins), path.name
        assert pins["pyspark"] == meta["spark"]
        keys.add(re.sub(r"-scala2\.1\d$", "", meta["spark_version"]))
    assert keys == set(TESTED_RUNTIMES) and len(RUNTIMES) >= 3
    assert {"15.4.x", "16.4.x"} <= keys and any(read_runtime(p)[0]["spark"].startswith("4.") for p in RUNTIMES)


@pytest.mark.parametrize("path", RUNTIMES, ids=[p.stem for p in RUNTIMES])
def test_install_requires_admits_every_pinned_version(path):
    meta, pins = read_runtime(path)
    env = {"python_version": meta["python"], "python_full_version": meta["python"] + ".0"}
    for req in install_requires():
        name = canonicalize_name(req.name)
        if name in pins and (req.marker is None or req.marker.evaluate(env)):
            admitted = req.specifier.contains(pins[name], prereleases=True)
            floor = next((s.version for s in req.specifier if s.operator == ">="), pins[name])
            assert admitted or _patch_move(name, pins[name], floor), f"{req} refuses {name}=={pins[name]}"


def test_bundle_installs_the_wheel_and_no_spark():
    wheels, pypi = bundle_libraries()
    assert wheels and all(w.endswith("dist/*.whl") for w in wheels)
    assert not {canonicalize_name(Requirement(r).name) for r in pypi} & NEVER_INSTALLED


def test_bundle_targets_a_tested_runtime_and_the_serverless_template_is_valid():
    from databricks.bundles.jobs import Job

    bundle = yaml.safe_load((ROOT / "databricks.yml").read_text())
    default = bundle["variables"]["spark_version"]["default"]
    assert re.sub(r"-scala2\.1\d$", "", default) in TESTED_RUNTIMES
    for target in bundle["targets"].values():
        chosen = target.get("variables", {}).get("spark_version", default)
        assert re.sub(r"-scala2\.1\d$", "", chosen) in TESTED_RUNTIMES
    template = ROOT / "conf" / "databricks" / "serverless" / "health_report.yml"
    for job in yaml.safe_load(template.read_text())["resources"]["jobs"].values():
        Job.from_dict(job)
        keys = {e["environment_key"] for e in job["environments"]}
        assert all(t["environment_key"] in keys and "libraries" not in t for t in job["tasks"])
        assert (template.parent / job["tasks"][0]["spark_python_task"]["python_file"]).resolve().is_file()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)], check=True)
    return next(out.glob("pipeline_opt-*.whl"))


def runtime_env(root: Path, pins: dict[str, str]) -> Path:
    """A bare venv whose site-packages holds a distribution record of every pinned package and nothing else."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    purelib = Path(subprocess.run([str(root / "bin" / "python"), "-c",
                                   "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  check=True, capture_output=True, text=True).stdout.strip())
    for name, version in pins.items():
        info = purelib / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (info / "INSTALLER").write_text("databricks-runtime\n")
    return root / "bin" / "python"


@pytest.mark.slow
@pytest.mark.parametrize("path", RUNTIMES, ids=[p.stem for p in RUNTIMES])
def test_bundle_libraries_change_no_pinned_package(path, wheel, tmp_path):
    meta, pins = read_runtime(path)
    python = runtime_env(tmp_path / "runtime", pins)
    _, pypi = bundle_libraries()
    py = meta["python"].replace(".", "")
    report = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "pip", "--python", str(python), "install", "--dry-run", "-q", "--report",
           str(report), "--only-binary=:all:", "--python-version", meta["python"], "--implementation", "cp",
           "--abi", f"cp{py}", "--abi", "abi3", "--abi", "none", "--platform", "manylinux_2_28_x86_64",
           "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64", str(wheel), *pypi]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, f"{path.name}: pip cannot install the bundle's libraries:\n{done.stderr[-2000:]}"
    installs = {canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"]
                for i in json.loads(report.read_text())["install"]}
    assert "pipeline-opt" in installs  # the resolution really ran over our wheel
    changed = {n: f"{pins[n]} -> {v}" for n, v in installs.items() if n in pins and not _patch_move(n, pins[n], v)}
    assert not changed, f"{meta['runtime']}: installing the bundle's libraries would change {changed}"
    assert not set(installs) & NEVER_INSTALLED


def _patch_move(name: str, pinned: str, new: str) -> bool:
    """An allowed move: an ``ALLOWED_MOVES`` package going up, keeping as many leading release numbers as allowed."""
    from packaging.version import Version

    if name not in ALLOWED_MOVES:
        return False
    old, up, keep = Version(pinned), Version(new), ALLOWED_MOVES[name][1]
    return up >= old and up.release[:keep] == old.release[:keep]


def test_untested_runtime_is_named_in_a_warning():
    assert runtime_key("15.4") == "15.4.x" and runtime_key("18") == "18.x" and runtime_key("18.x") == "18.x"
    assert check_runtime("16.4") == "Databricks Runtime 16.4 LTS"
    with pytest.warns(UntestedRuntimeWarning, match="'14.3'"):
        assert check_runtime("14.3") is None
    with pytest.warns(UntestedRuntimeWarning, match="client.3.1"):
        check_runtime("client.3.1")  # a serverless environment is no tested runtime either


def test_main_venv_is_not_used_as_the_runtime(tmp_path):
    python = runtime_env(tmp_path / "rt", {"numpy": "1.23.5"})
    listed = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "list", "--format=json"],
                            check=True, capture_output=True, text=True).stdout
    assert json.loads(listed) == [{"name": "numpy", "version": "1.23.5"}]
    assert sysconfig.get_paths()["purelib"] not in listed
