"""Monitoring around every optimization: metrics (``metrics``, ``store``, ``prometheus``), versioned configs
(``versions``), rollback triggers (``rollback``), A/B rollout (``ab``) and the report (``report``, ``sections``,
``plots``, ``results``, ``extract``); ``wiring`` builds a job's recorder and guard from ``conf/monitor.yml``."""
