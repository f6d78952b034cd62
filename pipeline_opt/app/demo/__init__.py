"""The demo: a generated TPC-H lakehouse (``lakehouse``) and the main job end to end on it (``run``), one showcase
module per part of the product, each reading the lakehouse and writing only under the demo's output folder."""
