# Databricks notebook source
# MAGIC %md
# MAGIC # VACUUM Delta tables
# MAGIC Dry run by default: lists the files (and bytes) VACUUM would delete. Retention comes from `conf/tables.yml`
# MAGIC (168 hours unless set); below 168 hours is refused unless `allow_unsafe` is `true`. The widgets are the
# MAGIC parameters of `pipeline-opt vacuum`; same job as `jobs/vacuum_tables.py`.

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
