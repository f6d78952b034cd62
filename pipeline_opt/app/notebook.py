"""Databricks notebooks: a job's parameters as widgets, its result as a table to ``display``.

Invariants: a notebook declares one widget per job parameter (a true/false dropdown for a switch, a dropdown for a
parameter with choices, text otherwise — comma-separated for a list), reads them back as text and runs the job
through ``run_job`` with the notebook's own session, so a notebook gives what the CLI and spark-submit give for the
same parameters; an empty widget means the parameter's default. A table widget takes a path or a catalog name; a
runtime outside the tested set (``spark.TESTED_RUNTIMES``) is named in a warning when the widgets are declared.
"""
from __future__ import annotations

import json
from typing import Any

from pipeline_opt.app.jobs import find_job
from pipeline_opt.output import to_jsonable
from pipeline_opt.spark import check_runtime, is_databricks


def job_widgets(dbutils, name: str, **defaults: Any) -> dict[str, str]:
    """Declare the widgets of job ``name`` (``defaults`` pre-fill some) and return their current values."""
    spec = find_job(name)
    if is_databricks():
        check_runtime()
    widgets = dbutils.widgets
    for p in spec.params:
        label = f"{p.name}: {p.help}"[:80]
        if p.flag:
            widgets.dropdown(p.name, str(bool(defaults.get(p.name, False))).lower(), ["false", "true"], label)
        elif p.choices:
            widgets.dropdown(p.name, str(defaults.get(p.name, p.default)), [str(c) for c in p.choices], label)
        else:
            value = defaults.get(p.name, "")
            widgets.text(p.name, ",".join(map(str, value)) if isinstance(value, list) else str(value), label)
    return {p.name: widgets.get(p.name) for p in spec.params}


def frame(result: Any):
    """The result as a pandas DataFrame for ``display``: one row per table (or per item), nested facts as
    ``a.b`` columns and lists as JSON text."""
    import pandas as pd

    data = to_jsonable(result)
    rows = data if isinstance(data, list) else [data]
    return pd.DataFrame([_flat(r) if isinstance(r, dict) else {"value": r} for r in rows])


def _flat(row: dict, prefix: str = "") -> dict:
    out: dict = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, name + "."))
        elif isinstance(value, list):
            out[name] = json.dumps(value, default=str)
        else:
            out[name] = value
    return out
