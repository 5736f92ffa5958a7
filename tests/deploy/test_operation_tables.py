"""Deploy operations as tables (pyinfra's tests/operations/<op>/<case>.json): what the
host reports (facts) and what the deploy wants (args) give the exact commands.

Cases live in tests/deploy/operations/<operation>/<case>.json:
- managed_file: `facts` are the `stat`/`sha1sum` lines of the host's state query,
  `args` the wanted file; commands are StringCommand text or ["upload", dest, content].
- managed_directory: the same facts, `args` the wanted directory.
- services: `facts` say which services run and whether systemd does, `args` the start
  order, the changed services and whether the code is new.
No lab and no SSH: pyinfra's operation bodies run with an empty State.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pyinfra.api.command import FileUploadCommand, StringCommand
from pyinfra.api.config import Config
from pyinfra.api.inventory import Inventory
from pyinfra.api.state import State
from pyinfra.context import ctx_state

from relayops.compile.files import Directory
from relayops.deploy.operations import managed_directory, managed_file
from relayops.deploy.services import control_command, service_actions
from relayops.deploy.state import Wanted, directory_changes, file_changes, parse_states

CASES_DIR = Path(__file__).resolve().parent / "operations"
OPERATIONS = ("managed_file", "managed_directory", "services")


def _cases(operation: str) -> list[Path]:
    return sorted((CASES_DIR / operation).glob("*.json"))


def _rendered(commands: Iterable[StringCommand | FileUploadCommand]) -> list[Any]:
    out: list[Any] = []
    for command in commands:
        if isinstance(command, FileUploadCommand):
            assert isinstance(command.src, io.BytesIO)  # managed_file uploads from memory
            out.append(["upload", command.dest, command.src.getvalue().decode()])
        else:
            out.append(command.get_raw_value())
    return out


@pytest.fixture(scope="module")
def pyinfra_state() -> Iterator[None]:
    """An empty pyinfra State (no diff shown), as operation bodies read `state.config`."""
    inventory = Inventory((["relay.test"], {}))  # type: ignore[no-untyped-call]
    with ctx_state.use(State(inventory, Config())):  # type: ignore[no-untyped-call]
        yield


def test_every_operation_has_cases() -> None:
    assert {p.name for p in CASES_DIR.iterdir()} == set(OPERATIONS)
    assert [len(_cases(op)) for op in OPERATIONS] == [7, 6, 9]


@pytest.mark.parametrize("case", _cases("managed_file"), ids=lambda p: p.stem)
def test_managed_file(case: Path, pyinfra_state: None) -> None:
    data = json.loads(case.read_text())
    args = data["args"]
    wanted = Wanted(
        args["path"],
        args["content"].encode(),
        int(args["mode"], 8),
        args["user"],
        args["group"],
        secret=args.get("secret", False),
    )
    changes = file_changes([wanted], parse_states(data["facts"]))
    commands = [c for change in changes for c in _rendered(managed_file._inner(change))]
    assert commands == data["commands"]


@pytest.mark.parametrize("case", _cases("managed_directory"), ids=lambda p: p.stem)
def test_managed_directory(case: Path) -> None:
    data = json.loads(case.read_text())
    args = data["args"]
    wanted = Directory(args["path"], int(args["mode"], 8), args["owner"], args["group"])
    changes = directory_changes([wanted], parse_states(data["facts"]))
    commands = [c for d in changes for c in _rendered(managed_directory._inner(d))]
    assert commands == data["commands"]


@pytest.mark.parametrize("case", _cases("services"), ids=lambda p: p.stem)
def test_services(case: Path) -> None:
    data = json.loads(case.read_text())
    args, facts = data["args"], data["facts"]
    actions = service_actions(
        args["services"], facts["running"], args["changed"], new_code=args["new_code"]
    )
    commands = [control_command(s, verb, systemd=facts["systemd"]) for s, verb in actions]
    assert commands == data["commands"]
