"""TPC-H Q1 and Q6 over ``lineitem``: the two queries the demo and the compaction benchmark time before and after.

Q1 scans nearly every row (layout helps it little); Q6 reads one ship year, so partitions and file sizes matter.
"""
from __future__ import annotations

import time

Q1 = """select l_returnflag, l_linestatus, sum(l_quantity), sum(l_extendedprice),
 sum(l_extendedprice*(1-l_discount)), sum(l_extendedprice*(1-l_discount)*(1+l_tax)), avg(l_quantity),
 avg(l_extendedprice), avg(l_discount), count(*) from lineitem where l_shipdate <= date '1998-09-02'
 group by l_returnflag, l_linestatus order by l_returnflag, l_linestatus"""
Q6 = """select sum(l_extendedprice*l_discount) from lineitem where l_shipdate >= date '1994-01-01'
 and l_shipdate < date '1995-01-01' and l_discount between 0.05 and 0.07 and l_quantity < 24"""
QUERIES = {"Q1": Q1, "Q6": Q6}


def time_queries(spark, lineitem_path: str, repeats: int = 1, warm_up: bool = True) -> dict[str, float]:
    """Seconds of each query on the Delta table at ``lineitem_path``: the fastest of ``repeats`` runs, after one
    untimed run (``warm_up``) so the JVM's compiled code and the page cache do not favour the table timed later."""
    spark.read.format("delta").load(lineitem_path).createOrReplaceTempView("lineitem")
    seconds = {}
    for name, sql in QUERIES.items():
        if warm_up:
            spark.sql(sql).collect()
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            spark.sql(sql).collect()
            runs.append(time.perf_counter() - t0)
        seconds[name] = round(min(runs), 3)
    return seconds
