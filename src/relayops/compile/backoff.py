"""Automatic back-off on a relay (#12 step 3): the two services' files, from the policy.

`relayops backoff watch` follows every output instance's log and pauses an IP × ISP class
for its class's `back_off.pause_seconds` when a receiver asks to slow down;
`relayops backoff serve` answers the instances' transport_maps socketmap from the pauses
(compile/instances.py asks it first). Their arguments and the watcher's configuration
are compiled here, so `plan` shows them and a changed pause time reloads the watcher only.
"""

from __future__ import annotations

from relayops.backoff.config import BackoffConfig
from relayops.backoff.names import (
    CONFIG_PATH,
    METRICS_PORT,
    SERVE_SERVICE,
    SOCKETMAP_ADDRESS,
    SOCKETMAP_PORT,
    WATCH_SERVICE,
)
from relayops.compile.files import ManagedFile
from relayops.compile.instances import output_instances
from relayops.compile.templates import Templates
from relayops.model import RelayHost, Repo


def backoff_config(repo: Repo, host: RelayHost) -> BackoffConfig:
    return BackoffConfig(
        pause_seconds={name: cls.back_off.pause_seconds for name, cls in repo.throttling.items()},
        maillogs=[instance.maillog for instance in output_instances(host)],
    )


def serve_arguments() -> list[str]:
    return [
        "--listen", f"{SOCKETMAP_ADDRESS}:{SOCKETMAP_PORT}",
        "--metrics", f"{SOCKETMAP_ADDRESS}:{METRICS_PORT}",
    ]  # fmt: skip


def watch_arguments() -> list[str]:
    return ["--config", str(CONFIG_PATH), "--follow"]


def backoff_files(repo: Repo, host: RelayHost, templates: Templates) -> list[ManagedFile]:
    config = backoff_config(repo, host).to_json().encode("utf-8")
    files = [ManagedFile(str(CONFIG_PATH), config, 0o644, "root", "root", WATCH_SERVICE)]
    for service, arguments in ((SERVE_SERVICE, serve_arguments()),
                               (WATCH_SERVICE, watch_arguments())):  # fmt: skip
        path = f"/etc/default/{service}"
        content = templates.render(path, arguments=" ".join(arguments))
        files.append(ManagedFile(path, content, 0o644, "root", "root", service))
    return files
