"""Operation positions are the same in every process: pyinfra on the controller and any
later run must agree on the order, whatever PYTHONHASHSEED each interpreter drew."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from relayops.deploy.ordering import path_position

PATHS = (
    "/etc/postfix/main.cf",
    "/etc/postfix/master.cf",
    "/etc/opendkim/keys",
    "/etc/opendkim/keys/a.example",
    "/etc/relayops/policy.json",
)
SCRIPT = (
    "import json, sys\n"
    "from relayops.deploy.ordering import path_position\n"
    "print(json.dumps([path_position(p) for p in sys.argv[1:]]))\n"
)
SRC = Path(__file__).resolve().parents[2] / "src"


def _positions_in_a_process(seed: str) -> list[int]:
    env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(SRC)}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, *PATHS],
        capture_output=True, text=True, check=True, env=env, timeout=60,
    ).stdout  # fmt: skip
    positions: list[int] = json.loads(out)
    return positions


def test_positions_agree_across_processes_with_different_hash_seeds() -> None:
    here = [path_position(p) for p in PATHS]
    assert _positions_in_a_process("0") == here
    assert _positions_in_a_process("1") == here
    assert _positions_in_a_process("12345") == here


def test_position_is_depth_then_crc32_of_the_path() -> None:
    """Pinned: the key is (depth << 32) | CRC-32, so it never depends on the interpreter."""
    assert path_position("/etc/postfix/main.cf") == (3 << 32) | 0xFBC325D3
