"""Prometheus metrics of `relayops backoff serve` (text format over HTTP on --metrics).

Read at scrape time, in prometheus-client's HTTP thread, from a PauseBook of its own (a
SQLite connection is not shared between threads) and from the answer counters the
socketmap loop increments.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from relayops.backoff.pauses import PauseBook


class BackoffCollector(Collector):
    def __init__(
        self,
        book: PauseBook,
        answers: Mapping[str, int],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.book, self.answers, self.clock = book, answers, clock

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        labels = ["ip", "isp_class", "kind"]
        paused = GaugeMetricFamily(
            "relayops_backoff_paused",
            "1 per sending IP × ISP class paused because a receiver asked to slow down",
            labels=labels,
        )
        remaining = GaugeMetricFamily(
            "relayops_backoff_pause_remaining_seconds",
            "Seconds until the pause of this sending IP × ISP class ends by itself",
            labels=labels,
        )
        for p in self.book.active(now=now):
            paused.add_metric([p.ip, p.isp_class, p.kind], 1)
            remaining.add_metric([p.ip, p.isp_class, p.kind], round(p.until - now, 3))
        yield paused
        yield remaining
        answers = CounterMetricFamily(
            "relayops_backoff_lookups",
            "Socketmap lookups answered, by answer (retry: held by a pause)",
            labels=["answer"],
        )
        for answer, n in sorted(self.answers.items()):
            answers.add_metric([answer], n)
        yield answers


def serve_metrics(collector: BackoffCollector, host: str, port: int) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    start_http_server(port, addr=host, registry=registry)
    return registry
