# Databricks notebook source
# MAGIC %md
# MAGIC # VACUUM Delta tables
# MAGIC Dry run by default: lists the files (and bytes) VACUUM would delete. Retention comes from `conf/tables.yml`
# MAGIC (168 hours unless set); below 168 hours is refused unless `allow_unsafe` is `true`. The widgets are the
# MAGIC parameters of `pipeline-opt vacuum`; same job as `jobs/vacuum_tables.py`.
# MAGIC
# MAGIC **The wheel on the cluster.** Run as a bundle job, the task installs it (`libraries: - whl: ../../dist/*.whl`,
# MAGIC see `conf/databricks/`); its dependencies stay within the runtime's own pandas, numpy and pyarrow
# MAGIC (`conf/runtimes/`). Run by hand, install the wheel the bundle uploaded first: `%pip install <bundle artifact
# MAGIC path>/.internal/pipeline_opt-<version>-py3-none-any.whl` (or attach it as a cluster library). Tables are paths
# MAGIC or catalog names (`main.sales.events`); leave `base_dir` empty for names.

# COMMAND ----------

from pipeline_opt.app.jobs import run_job
from pipeline_opt.app.notebook import frame, job_widgets
from pipeline_opt.output import render

params = job_widgets(dbutils, "vacuum", config="conf/tables.yml")

# COMMAND ----------

result = run_job("vacuum", params, spark=spark)
print(render(result))

# COMMAND ----------

display(frame(result))
