# Databricks notebook source
# MAGIC %md
# MAGIC # Partitioning advisor
# MAGIC Recommends partition columns, liquid clustering or Z-order columns, or none, with the reason for each, from
# MAGIC the table's size, its column cardinalities and (optionally) a log of query predicates. `apply` re-lays the
# MAGIC table in one Delta commit, verified row for row. Same calls as `pipeline-opt partitioning`.

# COMMAND ----------

dbutils.widgets.text("path", "", "Delta table path")
dbutils.widgets.text("predicates", "", "Query log (optional): one query or WHERE clause per line")
dbutils.widgets.dropdown("apply", "false", ["false", "true"], "Re-lay the table as recommended")

# COMMAND ----------

from pipeline_opt.tables.maintenance_jobs import metrics_frame
from pipeline_opt.tables.partitioning import advise
from pipeline_opt.tables.predicates import read_predicate_log
from pipeline_opt.tables.relayout import apply_layout

path = dbutils.widgets.get("path")
log = dbutils.widgets.get("predicates")
advice = advise(spark, path, read_predicate_log(log) if log else None)
if dbutils.widgets.get("apply") == "true":
    advice.applied = apply_layout(spark, path, advice)
print(advice.render())

# COMMAND ----------

display(metrics_frame(advice.columns))
