# SPDX-License-Identifier: GPL-2.0-or-later
"""``/metrics``: the box's operational figures in the Prometheus text format (prometheus_client).

Why prometheus_client: it is the reference implementation of the exposition format (escaping, types,
histogram buckets), so nothing of the format is hand-written here.  Counters are the box's own: each
worker reports cumulative totals with every event poll and the box adds the increase (a restarted worker
starts from zero, which is not counted as a decrease).  Labels carry no call or card data: only paths,
outcomes, statuses, worker numbers and reasons.
"""
from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

__all__ = ["BoxMetrics", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: worker counter -> (metric, labels); pl_* / port_* are media counters summed over the worker's calls
_WORKER_COUNTERS = {
    "calls": ("calls", {}),
    "refused": ("calls_refused", {}),
    "connected": ("calls_connected", {}),
    "failed": ("calls_failed", {}),
}
_TOTALS = {
    "pl_digits_inband": ("keys", {"path": "inband"}),
    "pl_digits_rfc4733": ("keys", {"path": "rfc4733"}),
    "pl_digits_sip_info": ("keys", {"path": "sip_info"}),
    "port_late": ("late_ticks", {}),
    "pl_frames": ("media_frames", {}),
    "pl_masked_spans": ("masked_spans", {}),
    "pl_errors": ("frames_silenced", {"cause": "pipeline_fault"}),
    "port_errors": ("frames_silenced", {"cause": "port_fault"}),
    "port_missing": ("frames_silenced", {"cause": "no_frame_ready"}),
}


class _Supervisor:
    """Collector for what only the supervisor knows: workers alive, their restarts and lost calls."""

    def __init__(self, workers: Callable[[], list]):
        self.workers = workers

    def collect(self):
        alive = GaugeMetricFamily("dtmfguard_workers_alive", "Worker processes running", labels=[])
        restarts = CounterMetricFamily("dtmfguard_worker_restarts", "Worker processes restarted after exiting",
                                       labels=["worker"])
        lost = CounterMetricFamily("dtmfguard_worker_calls_lost", "Calls ended because their worker died",
                                   labels=["worker"])
        n = 0
        for w in self.workers():
            n += 1 if w.get("alive") else 0
            restarts.add_metric([str(w["index"])], w.get("restarts", 0))
            lost.add_metric([str(w["index"])], w.get("calls_lost", 0))
        alive.add_metric([], n)
        yield alive
        yield restarts
        yield lost


class BoxMetrics:
    def __init__(self, workers: Callable[[], list] | None = None):
        r = self.registry = CollectorRegistry()
        self.calls = Counter("dtmfguard_calls", "Customer calls received (INVITEs)", registry=r)
        self.calls_refused = Counter("dtmfguard_calls_refused", "Calls refused by the guard", registry=r)
        self.calls_connected = Counter("dtmfguard_calls_connected", "Calls bridged to an agent", registry=r)
        self.calls_failed = Counter("dtmfguard_calls_failed", "Calls whose agent leg failed", registry=r)
        self.calls_active = Gauge("dtmfguard_calls_active", "Calls not ended yet (as the box sees them)",
                                  registry=r)
        self.keys = Counter("dtmfguard_keys", "Keys detected, by the path they came on", ["path"], registry=r)
        self.late_ticks = Counter("dtmfguard_late_ticks", "Media clock ticks later than 1.5 frames", registry=r)
        self.masked_spans = Counter("dtmfguard_masked_spans", "Key presses masked in the agent's audio (spans)",
                                    registry=r)
        self.media_frames = Counter("dtmfguard_media_frames", "Customer frames through the masking pipeline",
                                    registry=r)
        self.frames_silenced = Counter("dtmfguard_frames_silenced",
                                       "Agent frames replaced by silence (fail closed), by cause", ["cause"],
                                       registry=r)
        self.sessions = Counter("dtmfguard_payment_sessions", "Payment sessions ended, by outcome", ["outcome"],
                                registry=r)
        self.sessions_started = Counter("dtmfguard_payment_sessions_started", "Payment sessions started",
                                        registry=r)
        self.gateway = Counter("dtmfguard_gateway_results", "Payment gateway answers, by status", ["status"],
                               registry=r)
        self.gateway_latency = Histogram("dtmfguard_gateway_latency_seconds", "Card hand-off to gateway answer",
                                         buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30), registry=r)
        self.auth_failures = Counter("dtmfguard_api_auth_failures", "Control requests refused, by reason",
                                     ["reason"], registry=r)
        self.requests = Counter("dtmfguard_api_requests", "Control requests answered", ["method", "status"],
                                registry=r)
        self.followers = Gauge("dtmfguard_api_feed_followers", "Open agent feed streams", registry=r)
        if workers is not None:
            r.register(_Supervisor(workers))
        self._last: dict = {}  # (worker, boot) -> last cumulative figures

    def worker_poll(self, worker: int, boot: str, data: dict) -> None:
        """Add what a worker's cumulative counters grew by since its last poll."""
        prev = self._last.setdefault((worker, boot), {})
        for key in [k for k in self._last if k[0] == worker and k[1] != boot]:
            del self._last[key]  # its previous life: forget
        figures = {**{("c", k): v for k, v in (data.get("counters") or {}).items()},
                   **{("t", k): v for k, v in (data.get("totals") or {}).items()}}
        for (src, key), value in figures.items():
            grew = value - prev.get((src, key), 0)
            prev[(src, key)] = value
            if grew <= 0:
                continue
            if src == "c" and key in _WORKER_COUNTERS:
                name, labels = _WORKER_COUNTERS[key]
                getattr(self, name).inc(grew)
            elif src == "t" and key in _TOTALS:
                name, labels = _TOTALS[key]
                metric = getattr(self, name)
                (metric.labels(**labels) if labels else metric).inc(grew)
            elif src == "t" and key.startswith("session_"):
                self.sessions.labels(outcome=key[8:]).inc(grew)
            elif src == "t" and key == "sessions_started":
                self.sessions_started.inc(grew)
            elif src == "t" and key.startswith("gateway_"):
                self.gateway.labels(status=key[8:]).inc(grew)
        for ms in data.get("gateway_ms") or []:
            self.gateway_latency.observe(float(ms) / 1000)

    def render(self) -> bytes:
        return generate_latest(self.registry)
