"""The relay deploy as pyinfra `@deploy` functions, one module per concern.

`relay()` is the whole deploy; deploys/relay.py, the file pyinfra runs, only calls it.
Order: packages, accounts, directories, files, map indexes, the policy daemon, Redis,
configuration checks, then services: started if stopped, reloaded (never restarted)
if their files changed, untouched otherwise; changed Sentinel settings sent to the running
sentinel; last, what the previous deploy recorded
and nothing wants any more is removed (docs/deploy.md, "Removals").
"""

from __future__ import annotations

from relayops.deploy import removal_steps
from relayops.deploy.tasks import (
    checks,
    content,
    packages,
    policyd,
    prepare,
    redis,
    sentinel,
    services,
)


def relay() -> None:
    """Deploy the host pyinfra is running for (decided once, then the steps in order)."""
    run = prepare.host_run()
    packages.ensure(run=run)
    managed = removal_steps.record(run.plan, run.manifest)
    content.apply(run=run)
    policyd.install(run=run)
    redis.configure(run=run)
    checks.verify(run=run)
    services.converge(run=run)
    sentinel.roll_out(run=run)
    removal_steps.remove(managed)
