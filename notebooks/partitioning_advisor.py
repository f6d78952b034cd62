# Databricks notebook source
# MAGIC %md
# MAGIC # Partitioning advisor
# MAGIC Recommends partition columns, liquid clustering or Z-order columns, or none, with the reason for each, from
# MAGIC the table's size, its column cardinalities and (optionally) a log of query predicates. `apply` re-lays the
# MAGIC table in one Delta commit, verified row for row. The widgets are the parameters of `pipeline-opt partitioning`.
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

params = job_widgets(dbutils, "partitioning")

# COMMAND ----------

result = run_job("partitioning", params, spark=spark)
print(render(result))

# COMMAND ----------

display(frame(result))
