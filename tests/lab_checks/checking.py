"""Running the checks engine against the lab from the tests, on a subset of targets."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from relayops.checks.engine import run_checks
from relayops.checks.resolver import make_resolver
from relayops.checks.result import CheckResult, Status
from relayops.checks.target import CheckTarget
from support.lab import Lab

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "inventory" / "lab.py"
CREDENTIALS = ROOT / "lab" / "credentials.lab-only.yaml"
# A changed relay answers differently from its next connection on; allow for a slow reload.
SETTLE_SECONDS = 20.0


@dataclass(frozen=True)
class LabChecks:
    """Runs the checks engine against the lab, as `relayops check` does, on a subset."""

    lab: Lab
    target: CheckTarget
    nameserver: str
    ca_bundle: Path

    def host(self, fqdn: str) -> CheckTarget:
        """The target narrowed to one relay (and no sender domain)."""
        hosts = tuple(h for h in self.target.hosts if h.fqdn == fqdn)
        assert hosts, f"{fqdn} is not a relay of the lab inventory"
        return replace(self.target, hosts=hosts, sender_domains=())

    def run(self, only: Iterable[str], target: CheckTarget | None = None) -> list[CheckResult]:
        return run_checks(
            target or self.target,
            only=tuple(only),
            resolver=make_resolver(self.nameserver, timeout=3.0),
            now=dt.datetime.now(dt.UTC),
            timeout=10.0,
            workers=8,
        )

    def run_until(
        self,
        only: Iterable[str],
        done: Callable[[list[CheckResult]], bool],
        target: CheckTarget | None = None,
    ) -> list[CheckResult]:
        """Run until `done(results)` (a reloaded daemon or NSD may lag a moment); the
        last results either way, so the caller's assertion shows what was seen."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            results = self.run(only, target)
            if done(results) or time.monotonic() > deadline:
                return results
            time.sleep(0.5)

    def assert_healthy(self, only: Iterable[str], target: CheckTarget | None = None) -> None:
        """After a restore: every selected check passes again (others need a healthy lab)."""
        results = self.run_until(only, all_ok, target)
        assert all_ok(results), described([r for r in results if r.status is not Status.OK])


def errors(results: list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.status is Status.ERROR]


def all_ok(results: list[CheckResult]) -> bool:
    return bool(results) and all(r.status is Status.OK for r in results)


def failing(subject: str) -> Callable[[list[CheckResult]], bool]:
    """`run_until` condition: the check of `subject` has failed."""
    return lambda results: any(r.subject == subject for r in errors(results))


def described(results: list[CheckResult]) -> list[str]:
    return [f"{r.status.value} {r.subject}: {r.message}" for r in results]


def only_error(results: list[CheckResult]) -> CheckResult:
    found = errors(results)
    assert len(found) == 1, described(found)
    return found[0]
