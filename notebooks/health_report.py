# Databricks notebook source
# MAGIC %md
# MAGIC # Delta table health
# MAGIC File-size health of the tables in `conf/tables.yml`, read from each table's Delta log, with Delta's own file
# MAGIC count beside it. Same call as `jobs/health_report.py`. Needs the `pipeline_opt` wheel on the cluster.

# COMMAND ----------

dbutils.widgets.text("config", "conf/tables.yml", "Tables config")
dbutils.widgets.text("tables", "", "Tables (comma-separated; empty: all)")
dbutils.widgets.text("base_dir", "", "Base folder or URI for relative table paths")

# COMMAND ----------

from pipeline_opt.tables.maintenance_jobs import configured_tables, health_report, metrics_frame

names = [n.strip() for n in dbutils.widgets.get("tables").split(",") if n.strip()]
config, tables = configured_tables(dbutils.widgets.get("config"), names, dbutils.widgets.get("base_dir") or None)
rows = health_report(spark, config, tables)

# COMMAND ----------

display(metrics_frame(rows))
