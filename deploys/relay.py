"""pyinfra deploy of a relay host: exactly the files `relayops render` shows, then reloads.

    relayops deploy --inventory inventory/lab.py          # validates first, then this
    pyinfra -y inventory/lab.py deploys/relay.py          # the same, without validation

The repository compiled is RELAYOPS_REPO (set by `relayops deploy`), else the one
holding this file. Order: packages, accounts, directories, files, map indexes, the
policy daemon, Redis, configuration checks, then services: started if stopped,
reloaded (never restarted) if their files changed, untouched otherwise; last, what the
previous deploy recorded and nothing wants any more is removed (docs/deploy.md).
"""

import sys
from pathlib import Path

_ENGINE = Path(__file__).resolve().parents[1]
if str(_ENGINE) not in sys.path:
    sys.path.insert(0, str(_ENGINE))

from deploys.tasks import checks, content, packages, policyd, prepare, redis, services  # noqa: E402

from relayops.deploy import removal_steps  # noqa: E402

run = prepare.host_run(_ENGINE)
packages.ensure(run)
managed = removal_steps.record(run.plan)
content.apply(run)
policyd.install(run)
redis.configure(run)
checks.verify(run)
services.converge(run)
removal_steps.remove(managed)
