"""Showcase of table maintenance on the TPC-H demo lakehouse: a VACUUM dry run from the Delta log and
partitioning advice for lineitem.

Invariant: read-only (a dry run and advice; nothing is rewritten or deleted).
"""
from __future__ import annotations

from pipeline_opt.app.demo.inputs import DemoInputs

# WHERE clauses of TPC-H queries that read lineitem (Q1, Q3, Q4, Q6, Q7, Q10, Q12, Q14, Q15, Q19, Q20).
TPCH_LINEITEM_PREDICATES = [
    "WHERE l_shipdate <= date '1998-12-01' - interval '90' day",
    "WHERE c_mktsegment = 'BUILDING' AND l_shipdate > date '1995-03-15'",
    "WHERE l_commitdate < l_receiptdate",
    "WHERE l_shipdate >= date '1994-01-01' AND l_shipdate < date '1995-01-01' AND l_discount BETWEEN 0.05 AND 0.07 "
    "AND l_quantity < 24",
    "WHERE l_shipdate BETWEEN date '1995-01-01' AND date '1996-12-31'",
    "WHERE l_returnflag = 'R' AND o_orderdate >= date '1993-10-01'",
    "WHERE l_shipmode IN ('MAIL', 'SHIP') AND l_commitdate < l_receiptdate AND l_receiptdate >= date '1994-01-01'",
    "WHERE l_shipdate >= date '1995-09-01' AND l_shipdate < date '1995-10-01'",
    "WHERE l_shipdate >= date '1996-01-01' AND l_shipdate < date '1996-04-01'",
    "WHERE l_quantity >= 1 AND l_quantity <= 11 AND l_shipmode IN ('AIR', 'AIR REG') AND l_shipinstruct = 'DELIVER "
    "IN PERSON'",
    "WHERE l_shipdate >= date '1994-01-01' AND l_shipdate < date '1995-01-01'",
]


def run(inputs: DemoInputs) -> dict:
    from pipeline_opt.spark import get_spark
    from pipeline_opt.tables.partitioning import advise
    from pipeline_opt.tables.vacuum_log import vacuum_from_log

    spark = get_spark("pipeline_opt-maintenance-demo")
    path = str(inputs.lakehouse / "lineitem")
    dry = vacuum_from_log(path)  # a dry run from the log: no listing of the table's folders
    advice = advise(spark, path, TPCH_LINEITEM_PREDICATES)
    inputs.out.mkdir(parents=True, exist_ok=True)
    (inputs.out / "maintenance.txt").write_text(dry.render() + "\n\n" + advice.render() + "\n")
    return {"vacuum_dry_run_files": dry.files, "vacuum_dry_run_bytes": dry.bytes,
            "current_partition_by": advice.current_partition_by, "advised_layout": advice.layout,
            "advised_partition_by": advice.partition_by, "advised_cluster_by": advice.cluster_by,
            "table_bytes": advice.bytes}
