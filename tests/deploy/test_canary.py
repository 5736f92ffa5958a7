"""`relayops deploy --canary HOST`: that host alone first, the rest only if it succeeded."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from relayops.cli import cli
from relayops.deploy import cli as deploy_cli
from relayops.deploy import runner
from relayops.deploy.canary import stages
from relayops.deploy.errors import DeployError
from relayops.deploy.runner import DeployResult
from relayops.deploy.target import Target

HOSTS = ["r1", "r2", "r3"]


@pytest.mark.parametrize(
    ("canary", "limit", "expected"),
    [
        (None, (), [()]),
        (None, ("r2",), [("r2",)]),
        ("r1", (), [("r1",), ("r2", "r3")]),
        ("r3", (), [("r3",), ("r1", "r2")]),
        ("r2", ("r2", "r3"), [("r2",), ("r3",)]),
        ("r2", ("r2",), [("r2",)]),
    ],
)
def test_stages(
    canary: str | None, limit: tuple[str, ...], expected: list[tuple[str, ...]]
) -> None:
    assert stages(HOSTS, canary=canary, limit=limit) == expected


def test_unknown_canary_or_limit_is_refused() -> None:
    with pytest.raises(DeployError, match=r"not a host of the inventory: r9; known: r1, r2, r3"):
        stages(HOSTS, canary="r9")
    with pytest.raises(DeployError, match="the canary r1 is not among the hosts --limit selects"):
        stages(HOSTS, canary="r1", limit=("r2",))


class FakeRuns:
    """Stands in for pyinfra: returns the given exit codes in order, records each --limit
    and the compiled target each run was handed."""

    def __init__(self, codes: list[int]) -> None:
        self.codes = codes
        self.limits: list[tuple[str, ...]] = []
        self.targets: list[Target] = []

    def __call__(self, _inventory: Path, **kwargs: object) -> DeployResult:
        limit, target = kwargs["limit"], kwargs["target"]
        assert isinstance(limit, tuple) and isinstance(target, Target)
        self.limits.append(limit)
        self.targets.append(target)
        return DeployResult(self.codes[len(self.limits) - 1], 0.5, "", target)


def deploy(
    monkeypatch: pytest.MonkeyPatch, repo: Path, codes: list[int], *args: str
) -> tuple[FakeRuns, int, str]:
    fake = FakeRuns(codes)
    monkeypatch.setattr(deploy_cli, "run_deploy", fake)
    compiles.clear()
    inventory = str(repo / "inventory/lab.py")
    result = CliRunner().invoke(
        cli, ["deploy", "--repo", str(repo), "--inventory", inventory, *args]
    )
    return fake, result.exit_code, result.output


compiles: list[tuple[Path, str]] = []  # load_target calls of the last `deploy` (fixture)


@pytest.fixture(autouse=True)
def count_compiles(monkeypatch: pytest.MonkeyPatch) -> None:
    real = runner.load_target

    def counted(root: Path, inventory_name: str) -> Target:
        compiles.append((root, inventory_name))
        return real(root, inventory_name)

    monkeypatch.setattr(runner, "load_target", counted)


def test_canary_then_the_rest(monkeypatch: pytest.MonkeyPatch, example_repo: Path) -> None:
    fake, code, out = deploy(
        monkeypatch, example_repo, [0, 0], "--canary", "relay1.relay.example.net"
    )
    assert fake.limits == [("relay1.relay.example.net",), ("relay2.relay.example.net",)]
    # Compiled once: the stages deploy the very target the host names came from.
    assert compiles == [(example_repo.resolve(), "lab")]
    assert fake.targets[0] is fake.targets[1]
    assert code == 0
    assert "(relay1.relay.example.net): ok in 0.5 s" in out
    assert "(relay2.relay.example.net): ok in 0.5 s" in out


def test_a_failed_canary_stops_the_deploy(
    monkeypatch: pytest.MonkeyPatch, example_repo: Path
) -> None:
    fake, code, out = deploy(
        monkeypatch, example_repo, [1], "--canary", "relay2.relay.example.net", "--json"
    )
    assert fake.limits == [("relay2.relay.example.net",)]
    assert code == 1
    data = json.loads(out)
    assert next(iter(data)) == "ok" and data["ok"] is False
    assert data["canary"] == "relay2.relay.example.net"
    assert [(s["hosts"], s["ok"]) for s in data["stages"]] == [
        (["relay2.relay.example.net"], False)
    ]
    assert data["skipped"] == [["relay1.relay.example.net"]]


def test_without_canary_one_run(monkeypatch: pytest.MonkeyPatch, example_repo: Path) -> None:
    fake, code, _ = deploy(monkeypatch, example_repo, [0])
    assert (fake.limits, code) == ([()], 0)
    assert compiles == [(example_repo.resolve(), "lab")]


def test_unknown_canary_exits_2(monkeypatch: pytest.MonkeyPatch, example_repo: Path) -> None:
    fake, code, out = deploy(monkeypatch, example_repo, [0], "--canary", "relay9")
    assert (fake.limits, code) == ([], 2)
    assert "relayops deploy: not a host of the inventory: relay9" in out


def test_a_given_target_is_deployed_without_compiling_again(
    monkeypatch: pytest.MonkeyPatch, example_repo: Path
) -> None:
    inventory = example_repo / "inventory" / "lab.py"
    target = runner.validate(inventory, example_repo)
    seen: list[list[str]] = []

    def pyinfra(argv: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        seen.append(argv)
        return subprocess.CompletedProcess(argv, 0, "pyinfra's output\n", "")

    monkeypatch.setattr(runner.subprocess, "run", pyinfra)
    compiles.clear()
    result = runner.run_deploy(inventory, dry=True, capture=True, target=target)
    assert compiles == []  # only the validate() above compiled
    assert (result.returncode, result.output, result.target) == (0, "pyinfra's output\n", target)
    assert seen[0][-2:] == [str(inventory.resolve()), str(runner.DEPLOY_FILE)]
    # Without one, the run compiles the inventory itself and hands it back.
    assert runner.run_deploy(inventory, dry=True, capture=True).target.root == target.root
    assert compiles == [(example_repo.resolve(), "lab")]
