# Databricks notebook source
# MAGIC %md
# MAGIC # Compact Delta tables
# MAGIC Compacts the tables of `conf/tables.yml` that the schedule ranks as worth it (a healthy table costs one log
# MAGIC read); every commit is verified row for row and restored on a mismatch. Same call as
# MAGIC `jobs/compact_tables.py`.

# COMMAND ----------

dbutils.widgets.text("config", "conf/tables.yml", "Tables config")
dbutils.widgets.text("tables", "", "Tables (comma-separated; empty: all)")
dbutils.widgets.text("access_log", "", "Access log (optional)")
dbutils.widgets.dropdown("all", "false", ["false", "true"], "Compact every table, not only scheduled ones")
dbutils.widgets.dropdown("dry_run", "false", ["false", "true"], "Plan only")
dbutils.widgets.text("base_dir", "", "Base folder or URI for relative table paths")

# COMMAND ----------

from pipeline_opt.tables.maintenance_jobs import compact_tables, metrics_frame

names = [n.strip() for n in dbutils.widgets.get("tables").split(",") if n.strip()]
rows = compact_tables(spark, dbutils.widgets.get("config"), names, dbutils.widgets.get("access_log") or None,
                      dbutils.widgets.get("all") == "true", dbutils.widgets.get("dry_run") == "true",
                      dbutils.widgets.get("base_dir") or None)

# COMMAND ----------

display(metrics_frame(rows))
