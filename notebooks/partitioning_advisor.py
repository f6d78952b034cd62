# Databricks notebook source
# MAGIC %md
# MAGIC # Partitioning advisor
# MAGIC Recommends partition columns, liquid clustering or Z-order columns, or none, with the reason for each, from
# MAGIC the table's size, its column cardinalities and (optionally) a log of query predicates. `apply` re-lays the
# MAGIC table in one Delta commit, verified row for row. The widgets are the parameters of `pipeline-opt partitioning`.

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
