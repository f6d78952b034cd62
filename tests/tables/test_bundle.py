"""The Databricks bundle, validated offline: every job through ``databricks-bundles``' strict ``Job.from_dict``."""
from __future__ import annotations

import glob
import re
from pathlib import Path

import pytest
import yaml
from databricks.bundles.jobs import Job

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = yaml.safe_load((ROOT / "databricks.yml").read_text())
VAR = re.compile(r"^\$\{var\.([A-Za-z_]+)\}$")


def _resource_files() -> list[Path]:
    return sorted(Path(p) for pattern in BUNDLE["include"] for p in glob.glob(str(ROOT / pattern)))


def _jobs() -> dict[str, tuple[Path, dict]]:
    jobs = {}
    for f in _resource_files():
        for key, job in yaml.safe_load(f.read_text())["resources"]["jobs"].items():
            assert key not in jobs, f"job {key} defined twice"
            jobs[key] = (f, job)
    return jobs


def _resolve(value, target: str):
    """A ``${var.x}`` value as the target would deploy it (target override, else the variable's default)."""
    m = VAR.match(str(value))
    if not m:
        return value
    overrides = BUNDLE["targets"][target].get("variables", {})
    return overrides.get(m.group(1), BUNDLE["variables"][m.group(1)]["default"])


def quartz_ok(expr: str) -> bool:
    """Quartz cron: sec min hour day-of-month month day-of-week [year], with '?' in exactly one day field."""
    fields = expr.split()
    if len(fields) not in (6, 7) or (fields[3] == "?") == (fields[5] == "?"):
        return False
    ranges = [(0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (1, 7)]
    for text, (lo, hi) in zip(fields, ranges):
        for part in text.split(","):
            base = part.split("/")[0]
            if base in ("*", "?") or re.fullmatch(r"[A-Z]{3}(-[A-Z]{3})?", base):
                continue
            bounds = base.split("-")
            if not all(b.isdigit() and lo <= int(b) <= hi for b in bounds):
                return False
    return True


def test_bundle_has_the_three_jobs_and_dev_prod_targets():
    assert set(_jobs()) == {"nightly_compaction", "weekly_vacuum", "health_report"}
    assert BUNDLE["targets"]["dev"]["mode"] == "development" and BUNDLE["targets"]["dev"]["default"] is True
    assert BUNDLE["targets"]["prod"]["mode"] == "production"
    assert BUNDLE["artifacts"]["pipeline_opt"]["type"] == "whl"


@pytest.mark.parametrize("name", ["nightly_compaction", "weekly_vacuum", "health_report"])
def test_job_definition_is_valid_scheduled_and_autoscaled(name):
    source, job = _jobs()[name]
    Job.from_dict(job)  # raises on an unknown key or a bad value
    assert quartz_ok(job["schedule"]["quartz_cron_expression"]) and job["schedule"]["timezone_id"]
    for cluster in job["job_clusters"]:
        scale = cluster["new_cluster"]["autoscale"]
        for target in BUNDLE["targets"]:
            lo, hi = int(_resolve(scale["min_workers"], target)), int(_resolve(scale["max_workers"], target))
            assert 1 <= lo <= hi, f"{name}/{target}: autoscale {lo}..{hi}"
    keys = {c["job_cluster_key"] for c in job["job_clusters"]}
    for task in job["tasks"]:
        assert task["job_cluster_key"] in keys
        if "spark_python_task" in task:
            entry, params = task["spark_python_task"]["python_file"], task["spark_python_task"]["parameters"]
            assert (source.parent / entry).resolve().is_file(), entry
            config = params[params.index("--config") + 1]
        else:
            entry = task["notebook_task"]["notebook_path"]
            assert (source.parent / f"{entry}.py").resolve().is_file(), entry
            config = task["notebook_task"]["base_parameters"]["config"]
        # the tables to maintain come from conf/tables.yml, shipped with the bundle files
        assert config == "${workspace.file_path}/conf/tables.yml"
        for var in re.findall(r"\$\{var\.([A-Za-z_]+)\}", yaml.safe_dump(job)):
            assert var in BUNDLE["variables"], f"{name}: undefined variable {var}"


def test_validation_rejects_typos_and_bad_values():
    _, job = _jobs()["nightly_compaction"]
    with pytest.raises(ValueError, match="quartz_cron"):
        Job.from_dict({**job, "schedule": {"quartz_cron": "0 0 1 * * ?", "timezone_id": "UTC"}})
    with pytest.raises(ValueError, match="MAYBE"):
        Job.from_dict({**job, "schedule": {**job["schedule"], "pause_status": "MAYBE"}})
    assert not quartz_ok("0 0 25 * * ?") and not quartz_ok("0 0 1 * * *") and not quartz_ok("0 1 * * *")
