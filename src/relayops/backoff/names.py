"""Names the compiler, the deploy and the relay's back-off services share: one home each.

In relayops.backoff (which the relay wheel carries, deploy/wheels.py) rather than in the
compiler, so the relay's `relayops backoff …` needs nothing of the compiler to know them.
"""

from __future__ import annotations

from pathlib import Path

INSTANCE_PREFIX = "postfix-"  # postmulti(1) requires it
CLASS_PREFIX = "isp-"  # keeps class names clear of master.cf's own services (smtp, local…)
# Where each output instance's maillog_file is (postlogd(8); read by warmup and back-off).
INSTANCE_LOG_DIR = "/var/log"
# `relayops backoff serve`: the socketmap the output instances' transport_maps ask first.
SOCKETMAP_ADDRESS = "127.0.0.1"
SOCKETMAP_PORT = 10190
# Its Prometheus metrics (the pauses in force), loopback only like the socketmap.
METRICS_PORT = 10191
# The runtime pauses (not in the repository, not in the deploy's files: drift ignores it).
DEFAULT_PAUSES = Path("/var/lib/relayops/pauses.sqlite")
# The watcher's compiled configuration: pause per class, the logs to follow.
CONFIG_PATH = Path("/etc/relayops/backoff.json")
# The two services on every relay (deploys/files/<name>.init|.service).
SERVE_SERVICE = "relayops-backoff-serve"
WATCH_SERVICE = "relayops-backoff-watch"


def instance_log(instance: str) -> str:
    """`postfix-ip-x` -> `/var/log/postfix-ip-x.log`."""
    return f"{INSTANCE_LOG_DIR}/{instance}.log"


def socketmap_table(instance: str) -> str:
    """The table an output instance's transport_maps asks first (socketmap_table(5))."""
    return f"socketmap:inet:{SOCKETMAP_ADDRESS}:{SOCKETMAP_PORT}:{instance}"
