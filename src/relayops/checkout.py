"""Where the relayops checkout is: the one place that knows (src/relayops -> the clone).

The engine runs from a source checkout (an editable install or PYTHONPATH=src): the
deploy file, the templates and the daemon's sources are files of that checkout, not
package data. Everything that needs one of them asks here.
"""

from __future__ import annotations

from pathlib import Path

import relayops

CHECKOUT = Path(relayops.__file__).resolve().parents[2]
DEPLOY_FILE = CHECKOUT / "deploys" / "relay.py"  # what `relayops deploy` hands to pyinfra
TEMPLATE_DIR = CHECKOUT / "deploys" / "templates"  # mirrors the hosts' paths
SERVICE_FILES = CHECKOUT / "deploys" / "files"  # the daemon's init script and systemd unit


def is_checkout(root: Path = CHECKOUT) -> bool:
    return (root / "pyproject.toml").is_file() and (root / "src" / "relayops").is_dir()
