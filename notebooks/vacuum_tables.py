# Databricks notebook source
# MAGIC %md
# MAGIC # VACUUM Delta tables
# MAGIC Dry run by default: lists the files (and bytes) VACUUM would delete. Retention comes from `conf/tables.yml`
# MAGIC (168 hours unless set); below 168 hours is refused unless `unsafe` is `true`. Same call as
# MAGIC `jobs/vacuum_tables.py`.

# COMMAND ----------

dbutils.widgets.text("config", "conf/tables.yml", "Tables config")
dbutils.widgets.text("tables", "", "Tables (comma-separated; empty: all)")
dbutils.widgets.text("retention_hours", "", "Retention hours (empty: from the config)")
dbutils.widgets.dropdown("execute", "false", ["false", "true"], "Delete (false: dry run)")
dbutils.widgets.dropdown("unsafe", "false", ["false", "true"], "I know retention below 168 h is unsafe")
dbutils.widgets.text("base_dir", "", "Base folder or URI for relative table paths")

# COMMAND ----------

from pipeline_opt.tables.maintenance_jobs import metrics_frame, vacuum_tables

names = [n.strip() for n in dbutils.widgets.get("tables").split(",") if n.strip()]
hours = dbutils.widgets.get("retention_hours").strip()
rows = vacuum_tables(spark, dbutils.widgets.get("config"), names, float(hours) if hours else None,
                     dbutils.widgets.get("execute") == "true", dbutils.widgets.get("unsafe") == "true",
                     dbutils.widgets.get("base_dir") or None)

# COMMAND ----------

display(metrics_frame(rows))
