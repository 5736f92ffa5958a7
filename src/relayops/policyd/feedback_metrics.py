"""Per-customer feedback figures as Prometheus metrics (read at scrape time, cached).

The scrape runs in prometheus-client's HTTP thread, never on the event loop, so
reading the ledger there costs requests nothing; the figures are re-read at most
every `max_age` seconds however often Prometheus scrapes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily, Metric

from relayops.policyd.ledger import LedgerError, Tally, open_ledger
from relayops.policyd.rules import AntiSpamRules


class FeedbackFigures:
    def __init__(
        self, store_spec: str, *, password: str | None = None, max_age: float = 30.0
    ) -> None:
        self.store_spec = store_spec
        self._password = password
        self.max_age = max_age
        self._lock = threading.Lock()
        self._at = 0.0
        self._rows: dict[str, tuple[Tally, int, bool]] = {}
        self._ok = False

    def _refresh(self, customers: Iterable[str], policy: AntiSpamRules) -> None:
        now = datetime.now(UTC)
        try:
            ledger = open_ledger(self.store_spec, password=self._password)
            try:
                flags = ledger.flags()
                suppressed: dict[str, int] = {}
                for s in ledger.suppressions(None, now=now.timestamp()):
                    suppressed[s.customer] = suppressed.get(s.customer, 0) + 1
                rows = {
                    cid: (
                        ledger.tally(cid, days=policy.window_days, today=now.date()),
                        suppressed.get(cid, 0),
                        cid in flags,
                    )
                    for cid in customers
                }
            finally:
                ledger.close()
        except LedgerError:
            self._ok = False
            return
        self._rows, self._ok = rows, True

    def families(self, customers: Iterable[str], policy: AntiSpamRules) -> Iterator[Metric]:
        with self._lock:
            if time.monotonic() - self._at > self.max_age:
                self._refresh(customers, policy)
                self._at = time.monotonic()
            rows, ok = self._rows, self._ok
        yield GaugeMetricFamily(
            "relayops_policyd_feedback_figures_ok",
            "1 when the last read of the feedback ledger succeeded",
            value=1 if ok else 0,
        )
        labels = ["customer"]
        fams = {
            name: GaugeMetricFamily(f"relayops_policyd_feedback_{name}", doc, labels=labels)
            for name, doc in (
                ("accepted", "Accepted recipients over the antispam window"),
                ("complaints", "Spam complaints over the antispam window"),
                ("hard_bounces", "Hard bounces over the antispam window"),
                ("soft_bounces", "Soft bounces over the antispam window"),
                ("blocks", "Reputation/policy blocks over the antispam window"),
                ("complaint_rate", "Complaints per accepted recipient over the window"),
                ("bounce_rate", "Hard bounces per accepted recipient over the window"),
                ("suppressed", "Recipients suppressed after a hard bounce"),
                ("disabled", "1 while sending is disabled pending complaint review"),
            )
        }
        for cid, (t, suppressed, disabled) in sorted(rows.items()):
            values = {
                "accepted": t.accepted,
                "complaints": t.complaint,
                "hard_bounces": t.hard,
                "soft_bounces": t.soft,
                "blocks": t.block,
                "complaint_rate": t.complaint / t.accepted if t.accepted else 0.0,
                "bounce_rate": t.hard / t.accepted if t.accepted else 0.0,
                "suppressed": suppressed,
                "disabled": 1 if disabled else 0,
            }
            for name, value in values.items():
                fams[name].add_metric([cid], value)
        yield from fams.values()
        yield GaugeMetricFamily(
            "relayops_policyd_feedback_complaint_ceiling",
            "Complaints per accepted recipient allowed (policies/antispam.yaml)",
            value=policy.complaints / policy.per_messages,
        )
        yield GaugeMetricFamily(
            "relayops_policyd_feedback_bounce_ceiling",
            "Hard bounces per accepted recipient allowed (policies/antispam.yaml)",
            value=policy.bounce_rate_max,
        )
