"""Prometheus metrics (text format over HTTP on ``--metrics HOST:PORT``).

The request path only increments plain integers (`Stats`, `PolicyServer.refusals`);
this collector turns them into metric families when Prometheus scrapes, so a
request never pays for prometheus-client's locks and label look-ups.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sized
from typing import Protocol

from prometheus_client import start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from relayops.policyd.feedback_metrics import FeedbackFigures
from relayops.policyd.notify import NotifyStats
from relayops.policyd.protocol import Stats
from relayops.policyd.rules import Rules


class _Notifier(Protocol):
    @property
    def stats(self) -> NotifyStats: ...


class _Store(Protocol):
    @property
    def outage(self) -> bool: ...


class MetricsSource(Protocol):
    """What the metrics read of a running daemon (server.PolicyServer provides it).

    A protocol, not the server class: the server must not be imported here, nor this
    module there, so the two stay apart (import-linter keeps policyd acyclic)."""

    @property
    def stats(self) -> Stats: ...

    @property
    def refusals(self) -> Mapping[str, int]: ...

    @property
    def reloads(self) -> Mapping[str, int]: ...

    @property
    def rules(self) -> Rules: ...

    @property
    def notifier(self) -> _Notifier: ...

    @property
    def store(self) -> _Store: ...

    @property
    def feedback(self) -> FeedbackFigures | None: ...

    @property
    def message_refusals(self) -> Mapping[str, int]: ...

    @property
    def milter_connections(self) -> Sized: ...


class PolicydCollector(Collector):
    def __init__(self, server: MetricsSource) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        s = self.server
        st = s.stats
        yield GaugeMetricFamily(
            "relayops_policyd_connections", "Open policy connections", value=st.connections
        )
        yield CounterMetricFamily(
            "relayops_policyd_accepted_connections",
            "Accepted policy connections",
            value=st.connections_total,
        )
        yield CounterMetricFamily(
            "relayops_policyd_requests", "Well-formed policy requests answered", value=st.requests
        )
        bad = CounterMetricFamily(
            "relayops_policyd_bad_requests",
            "Requests answered with a tempfail because of their form",
            labels=["why"],
        )
        bad.add_metric(["malformed"], st.malformed)
        bad.add_metric(["oversize"], st.oversize)
        bad.add_metric(["timeout"], st.timeouts)
        yield bad
        refusals = CounterMetricFamily(
            "relayops_policyd_refusals", "Requests refused, by reason", labels=["reason"]
        )
        for reason, n in sorted(s.refusals.items()):
            refusals.add_metric([str(reason)], n)
        yield refusals
        messages = CounterMetricFamily(
            "relayops_policyd_message_refusals",
            "Messages the milter refused (docs/milter.md), by reason",
            labels=["reason"],
        )
        for reason, n in sorted(s.message_refusals.items()):
            messages.add_metric([reason], n)
        yield messages
        yield GaugeMetricFamily(
            "relayops_policyd_milter_connections",
            "Open milter connections (one per Postfix smtpd session)",
            value=len(s.milter_connections),
        )
        notices = CounterMetricFamily("relayops_policyd_notices", "Notice mails", labels=["result"])
        ns = s.notifier.stats
        notices.add_metric(["sent"], ns.sent)
        notices.add_metric(["failed"], ns.failed)
        notices.add_metric(["dropped"], ns.dropped)
        yield notices
        reloads = CounterMetricFamily(
            "relayops_policyd_reloads", "Rules reloads on SIGHUP", labels=["result"]
        )
        for result, n in s.reloads.items():
            reloads.add_metric([result], n)
        yield reloads
        yield GaugeMetricFamily(
            "relayops_policyd_customers",
            "Customers in the loaded rules",
            value=len(s.rules.customers),
        )
        yield GaugeMetricFamily(
            "relayops_policyd_store_outage",
            "1 while the counter store is failing",
            value=1 if s.store.outage else 0,
        )
        credit = getattr(s.store, "credit_counts", None)  # the Redis store's (credit.py)
        if isinstance(credit, Mapping):
            family = CounterMetricFamily(
                "relayops_policyd_credit",
                "Quota credit: recipients answered from a run without a round trip "
                "(answered), charges asked again at the limit while credit was out (waited)",
                labels=["event"],
            )
            for event, n in sorted(credit.items()):
                family.add_metric([event], n)
            yield family
        if s.feedback is not None:
            rules = s.rules
            yield from s.feedback.families(sorted(rules.customers), rules.antispam)


def serve_metrics(server: MetricsSource, host: str, port: int) -> CollectorRegistry:
    """Serve this daemon's metrics (and only these) from a background thread."""
    registry = CollectorRegistry()
    registry.register(PolicydCollector(server))
    start_http_server(port, addr=host, registry=registry)
    return registry
