"""Prometheus metrics (``pip install 'oakid-gate[metrics]'``).

::

    from oakid_gate.metrics import enable_metrics

    metrics = enable_metrics()                 # once per process
    app.mount("/metrics", metrics.asgi_app())  # or metrics.wsgi_app(); never public

The commands serve them on their own listener with ``metrics_address``
(``127.0.0.1:9100``), never on the public one. What is counted, from the core's
events (:mod:`oakid_gate.gate.audit`) and the drivers' timings:

=====================================================  =================================
``oakid_gate_sign_ins_total{outcome,reason}``          sign-ins: success, refused, failed
``oakid_gate_sign_outs_total{kind}``                   ``user`` or ``backchannel``
``oakid_gate_refreshes_total{outcome,reason}``         token refreshes and re-reads
``oakid_gate_authorization_refusals_total``            403s of the authorization rules
``oakid_gate_bearer_checks_total{outcome,how}``        bearer tokens: ``checked`` or ``cached``
``oakid_gate_provider_request_seconds{endpoint}``      provider latency (histogram)
``oakid_gate_provider_errors_total{endpoint}``         provider requests that failed
``oakid_gate_store_seconds{operation}``                session store latency (histogram)
``oakid_gate_store_errors_total{operation}``           session store calls that failed
=====================================================  =================================

Several worker processes: with ``PROMETHEUS_MULTIPROC_DIR`` set (the commands set
it for their workers), each process writes its samples there and the exposition
adds them up (prometheus-client's multiprocess mode). Labels are bounded: reasons
are error codes, endpoints the provider's few, operations the store's.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from .drivers import timings
from .errors import ConfigurationError
from .gate import audit

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from .gate.store import SessionStore

__all__ = ["GateMetrics", "enable_metrics", "serve_metrics"]

_lock = threading.Lock()
_enabled: GateMetrics | None = None


def _client() -> Any:
    try:
        import prometheus_client
    except ImportError:
        raise ConfigurationError(
            "metrics_address", "needs prometheus-client: pip install 'oakid-gate[metrics]'"
        ) from None
    return prometheus_client


class GateMetrics:
    """The gate's metrics in one registry, fed by the core's events and the drivers."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        prom = _client()
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        # Multiprocess mode: samples go to files; the exposition reads them all.
        self.registry = registry if registry is not None else prom.CollectorRegistry()
        register = None if self.multiprocess else self.registry
        kw: dict[str, Any] = {"registry": register}
        self.sign_ins = prom.Counter("oakid_gate_sign_ins", "Sign-ins", ["outcome", "reason"], **kw)
        self.sign_outs = prom.Counter("oakid_gate_sign_outs", "Sign-outs", ["kind"], **kw)
        self.refreshes = prom.Counter(
            "oakid_gate_refreshes", "Token refreshes", ["outcome", "reason"], **kw
        )
        self.refusals = prom.Counter(
            "oakid_gate_authorization_refusals", "Requests the authorization rules refused", **kw
        )
        self.bearer = prom.Counter(
            "oakid_gate_bearer_checks", "Bearer token checks", ["outcome", "how"], **kw
        )
        self.provider_seconds = prom.Histogram(
            "oakid_gate_provider_request_seconds", "Provider request latency", ["endpoint"], **kw
        )
        self.provider_errors = prom.Counter(
            "oakid_gate_provider_errors", "Provider requests that failed", ["endpoint"], **kw
        )
        self.store_seconds = prom.Histogram(
            "oakid_gate_store_seconds", "Session store call latency", ["operation"], **kw
        )
        self.store_errors = prom.Counter(
            "oakid_gate_store_errors", "Session store calls that failed", ["operation"], **kw
        )

    # ------------------------------------------------------------ feeding

    def event(self, event: str, outcome: str, reason: str | None) -> None:
        if event == "sign_in":
            self.sign_ins.labels(outcome, reason or "").inc()
        elif event == "sign_out":
            kind = "backchannel" if (reason or "").startswith("backchannel") else "user"
            self.sign_outs.labels(kind).inc()
        elif event == "refresh":
            self.refreshes.labels(outcome, reason or "").inc()
        elif event == "authorization":
            self.refusals.inc()
        elif event == "bearer":
            self.bearer.labels(outcome, reason or "").inc()

    def timing(self, kind: str, name: str, seconds: float, ok: bool) -> None:
        if kind == "provider":
            self.provider_seconds.labels(name).observe(seconds)
            if not ok:
                self.provider_errors.labels(name).inc()
        else:
            self.store_seconds.labels(name).observe(seconds)
            if not ok:
                self.store_errors.labels(name).inc()

    # ------------------------------------------------------------ exposition

    def exposition_registry(self) -> CollectorRegistry:
        """What a scrape reads: this registry, or every process's samples."""
        if not self.multiprocess:
            return self.registry
        from prometheus_client import CollectorRegistry, multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry

    def watch_store(self, store: SessionStore, registry: CollectorRegistry | None = None) -> None:
        """Report ``oakid_gate_active_sessions`` from ``store`` at each scrape, where it can
        count (memory, sqlite; not redis)."""
        if store.count_sessions() is None:
            return
        from prometheus_client.core import GaugeMetricFamily
        from prometheus_client.registry import Collector

        class Sessions(Collector):
            def collect(self) -> Any:
                count = store.count_sessions()
                family = GaugeMetricFamily("oakid_gate_active_sessions", "Sessions in the store")
                family.add_metric([], float(count or 0))
                yield family

        (registry or self.registry).register(Sessions())

    def asgi_app(self) -> Any:
        return _client().make_asgi_app(registry=self.exposition_registry())

    def wsgi_app(self) -> Any:
        return _client().make_wsgi_app(registry=self.exposition_registry())


def enable_metrics(registry: CollectorRegistry | None = None) -> GateMetrics:
    """Turn the metrics on in this process (once; later calls return the same)."""
    global _enabled
    with _lock:
        if _enabled is None:
            metrics = GateMetrics(registry)
            audit.observers.append(metrics.event)
            timings.append(metrics.timing)
            _enabled = metrics
        return _enabled


def serve_metrics(address: str, store: SessionStore | None = None) -> None:
    """Serve every process's metrics on ``address`` (``host:port``) from a thread of
    this process: the commands' own listener, apart from the public one."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError("metrics_address", f"{address!r} is not host:port")
    metrics = enable_metrics()
    prom = _client()
    registry = metrics.exposition_registry()
    if store is not None:
        metrics.watch_store(store, registry)
    prom.start_http_server(int(port), addr=host or "127.0.0.1", registry=registry)
