# Databricks notebook source
# MAGIC %md
# MAGIC # Compact Delta tables
# MAGIC Compacts the tables of `conf/tables.yml` that the schedule ranks as worth it (a healthy table costs one log
# MAGIC read, `all` compacts every one); every commit is verified row for row and restored on a mismatch. The widgets
# MAGIC are the parameters of `pipeline-opt compact`; same job as `jobs/compact_tables.py`.
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

params = job_widgets(dbutils, "compact", config="conf/tables.yml")

# COMMAND ----------

result = run_job("compact", params, spark=spark)
print(render(result))

# COMMAND ----------

display(frame(result))
