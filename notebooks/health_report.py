# Databricks notebook source
# MAGIC %md
# MAGIC # Delta table health
# MAGIC File-size health of the tables in `conf/tables.yml` (or of one table path), read from each table's Delta
# MAGIC log. The widgets are the parameters of `pipeline-opt health`; same job as `jobs/health_report.py`.

# COMMAND ----------

from pipeline_opt.app.jobs import run_job
from pipeline_opt.app.notebook import frame, job_widgets
from pipeline_opt.output import render

params = job_widgets(dbutils, "health", config="conf/tables.yml")

# COMMAND ----------

result = run_job("health", params, spark=spark)
print(render(result))

# COMMAND ----------

display(frame(result))
