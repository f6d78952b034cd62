"""The Spark Connect slice runs in a process of its own (``test_connect.py`` starts it): once a Connect session
exists in a process, pyspark's functions build Connect columns for every session there, so it cannot share a process
with the classic session of the rest of the suite."""
import os

collect_ignore = [] if os.environ.get("PIPELINE_OPT_CONNECT_SLICE") else ["slice"]
