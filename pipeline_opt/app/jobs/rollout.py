"""Settings under rollout control: ``settings show|set`` and ``rollout start|status|promote|abort``.

Invariants: every value is checked by the setting's own part before the store is touched; the store and the metrics
are those of the monitor config (``--monitor-config``, else ``$PIPELINE_OPT_MONITOR``, else ``conf/monitor.yml``);
only ``start`` begins a rollout, so a rolled-back candidate never comes back by itself.
"""
from __future__ import annotations

import getpass

from pipeline_opt.app import monitoring
from pipeline_opt.app.job import Context, Param, job
from pipeline_opt.monitor.controlled import SETTINGS, setting
from pipeline_opt.monitor.rollouts import Settings
from pipeline_opt.monitor.store import read_metrics

KEY = Param("key", f"setting, one of: {', '.join(sorted(SETTINGS))}", positional=True, required=True)
REASON = Param("reason", "why (kept with the change)", default="")
AUTHOR = Param("author", "who (default: the user running it)")
MONITOR = Param("monitor_config", "conf/monitor.yml whose config_store and metrics_table to use")


def _settings(args) -> Settings:
    if getattr(args, "key", None):
        setting(args.key)  # an unknown key names the known ones before any store is opened
    config = monitoring.monitor_settings(args.monitor_config)
    return Settings(config.config_store, config, monitoring.CLOCK,
                    storage_options=monitoring.location_options(config.config_store))


def _author(args) -> str:
    return args.author or getpass.getuser()


@job("settings show", "the active value and version of every setting under rollout control (or of one)",
     Param("key", "only this setting", positional=True), MONITOR)
def show(ctx: Context, args):
    settings = _settings(args)
    keys = [setting(args.key).key] if args.key else sorted(SETTINGS)
    rows = []
    for key in keys:
        state = settings.rollout(key)
        rows.append({"setting": key, "version": settings.store.head(key), "value": settings.value(key),
                     "jobs": ", ".join(f"{j} --{p.replace('_', '-')}" for j, p in SETTINGS[key].params.items()),
                     "rollout": f"{state.id} {state.status}" if state else ""})
    return rows


@job("settings set", "make VALUE the active version of a setting at once (no rollout)",
     KEY, Param("value", "the new value", positional=True, required=True), REASON, AUTHOR, MONITOR)
def set_value(ctx: Context, args):
    settings = _settings(args)
    version = settings.set(args.key, args.value, _author(args), args.reason)
    return {"setting": args.key, "version": version, "value": settings.value(args.key)}


@job("rollout start", "propose VALUE for a setting: on 10, 25, 50 then 100 percent of tables, one step per run "
     "that shows it not worse",
     KEY, Param("value", "the candidate value", positional=True, required=True), REASON, AUTHOR, MONITOR)
def start(ctx: Context, args):
    settings = _settings(args)
    settings.start(args.key, args.value, _author(args), args.reason)
    return settings.summary(args.key, [])


@job("rollout status", "arms, sample sizes, effect with its bound, steps and the next one", KEY, MONITOR)
def status(ctx: Context, args):
    settings = _settings(args)
    metrics = settings.config.metrics_table
    return settings.summary(args.key, read_metrics(metrics, monitoring.location_options(metrics)))


@job("rollout promote", "make the candidate the active version now", KEY, REASON, AUTHOR, MONITOR)
def promote(ctx: Context, args):
    settings = _settings(args)
    settings.promote(args.key, _author(args), args.reason)
    return settings.summary(args.key, [])


@job("rollout abort", "stop the rollout; every run goes back to the active version", KEY, REASON, AUTHOR, MONITOR)
def abort(ctx: Context, args):
    settings = _settings(args)
    settings.abort(args.key, _author(args), args.reason)
    return settings.summary(args.key, [])
