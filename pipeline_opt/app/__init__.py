"""The application layer: every entry point of the product, and the only package that imports every part.

``job`` describes each job once (its parameters and what it returns); ``cli`` (the ``pipeline-opt`` command),
``submit`` (spark-submit), ``notebook`` (Databricks) and ``driver`` (steps of one Spark application on a cluster) all
start jobs through it. ``jobs/`` holds the jobs, ``training`` the training recipe, ``demo/`` the demo.
"""
