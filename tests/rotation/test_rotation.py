"""DKIM rotation: the pure steps, and `relayops dkim rotate` editing the example repository."""

from __future__ import annotations

import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from relayops.cli import cli
from relayops.customer_edits import set_dkim
from relayops.loader import load_repo
from relayops.model import Dkim
from relayops.rotation import RotationError, Step, default_selector, rotate
from relayops.roundtrip import RoundTripError

TODAY = date(2026, 12, 1)


def test_publish_adds_a_next_selector_and_keeps_signing() -> None:
    step = rotate(Dkim(selector="g1"), today=TODAY, selector="g2")
    assert step.step is Step.PUBLISH
    assert step.new_dkim == {"selector": "g1", "next": {"selector": "g2"}}
    assert step.new_selector == "g2"


def test_switch_moves_the_old_selector_to_previous_with_its_retire_date() -> None:
    step = rotate(Dkim.model_validate({"selector": "g1", "next": {"selector": "g2"}}),
                  today=TODAY, keep_days=7)  # fmt: skip
    assert step.step is Step.SWITCH
    assert step.new_dkim == {
        "selector": "g2",
        "previous": {"selector": "g1", "retire_after": date(2026, 12, 8)},
    }


@pytest.mark.parametrize(("days_left", "allowed"), [(1, False), (0, True), (-3, True)])
def test_retire_waits_for_the_retire_date(days_left: int, allowed: bool) -> None:
    dkim = Dkim.model_validate(
        {"selector": "g2", "previous": {"selector": "g1",
                                        "retire_after": TODAY + timedelta(days=days_left)}}
    )  # fmt: skip
    if allowed:
        step = rotate(dkim, today=TODAY)
        assert (step.step, step.new_dkim, step.retired_selector) == (
            Step.RETIRE, {"selector": "g2"}, "g1")  # fmt: skip
    else:
        with pytest.raises(RotationError, match="stays published until 2026-12-02"):
            rotate(dkim, today=TODAY)
        assert rotate(dkim, today=TODAY, force=True).step is Step.RETIRE


def test_one_rotation_at_a_time() -> None:
    with pytest.raises(ValueError, match="one rotation at a time"):
        Dkim.model_validate({"selector": "a", "next": {"selector": "b"},
                             "previous": {"selector": "c", "retire_after": TODAY}})  # fmt: skip
    with pytest.raises(ValueError, match="listed twice"):
        Dkim.model_validate({"selector": "a", "next": {"selector": "a"}})
    with pytest.raises(RotationError, match="already signs"):
        rotate(Dkim(selector="a"), today=TODAY, selector="a")


def test_published_lists_the_signing_selector_first() -> None:
    assert Dkim.model_validate({"selector": "a", "next": {"selector": "b"}}).published == ("a", "b")
    assert Dkim(selector="a").published == ("a",)


def test_default_selector_keeps_the_letters() -> None:
    assert default_selector("rly2026", TODAY) == "rly20261201"
    assert default_selector("2026", TODAY) == "s20261201"


def _git_diff(root: Path, rel: str, before: str) -> list[str]:
    after = (root / rel).read_text()
    import difflib

    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def test_rotate_command_publishes_then_switches_with_only_the_dkim_line_changed(
    example_repo: Path,
) -> None:
    rel = "customers/globex.yaml"
    before = (example_repo / rel).read_text()
    runner = CliRunner()
    args = ["dkim", "rotate", "globex.example", "--selector", "g2", "--repo", str(example_repo)]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert 'g2._domainkey.globex.example TXT "v=DKIM1; k=rsa; p=' in result.output
    assert _git_diff(example_repo, rel, before) == [
        "-    dkim: {selector: g1}",
        "+    dkim: {selector: g1, next: {selector: g2}}",
    ]
    assert (example_repo / "secrets/dkim/globex.example.g2.key.age").is_file()
    repo = load_repo(example_repo).repo
    assert repo is not None
    assert repo.customers["globex"].domains[0].dkim.published == ("g1", "g2")

    mid = (example_repo / rel).read_text()
    switch = ["dkim", "rotate", "globex.example", "--force", "--repo", str(example_repo)]
    result = runner.invoke(cli, switch)
    assert result.exit_code == 0, result.output
    retire = date.today() + timedelta(days=7)
    assert _git_diff(example_repo, rel, mid) == [
        "-    dkim: {selector: g1, next: {selector: g2}}",
        f"+    dkim: {{selector: g2, previous: {{selector: g1, retire_after: {retire}}}}}",
    ]


def test_switch_refuses_while_the_new_key_is_not_in_dns(example_repo: Path) -> None:
    runner = CliRunner()
    base = ["--repo", str(example_repo)]
    assert (
        runner.invoke(
            cli, ["dkim", "rotate", "globex.example", "--selector", "g2", *base]
        ).exit_code
        == 0
    )
    before = (example_repo / "customers/globex.yaml").read_text()
    # 127.0.0.1:53 answers nothing here: the look-up fails, so the switch must not happen.
    result = runner.invoke(
        cli, ["dkim", "rotate", "globex.example", "--nameserver", "127.0.0.1", *base]
    )
    assert result.exit_code == 1, result.output
    assert (
        "relayops dkim rotate: the new key is not live yet (g2._domainkey.globex.example:"
        in result.output
    )
    assert (example_repo / "customers/globex.yaml").read_text() == before


def test_unknown_domain_is_refused(example_repo: Path) -> None:
    result = CliRunner().invoke(
        cli, ["dkim", "rotate", "nobody.example", "--repo", str(example_repo)]
    )
    assert result.exit_code == 2
    assert (
        "relayops dkim rotate: no customer has the sender domain 'nobody.example'" in result.output
    )


def test_plan_lists_the_new_selector_record(example_repo: Path) -> None:
    subprocess.run(["git", "init", "-q"], cwd=example_repo, check=True)
    runner = CliRunner()
    args = ["dkim", "rotate", "globex.example", "--selector", "g2", "--repo", str(example_repo)]
    assert runner.invoke(cli, args).exit_code == 0
    from relayops.compile.dkim import public_key_der
    from relayops.compile.dns_records import domain_records, published_keys

    repo = load_repo(example_repo).repo
    assert repo is not None
    globex = repo.customers["globex"]
    keys = published_keys(globex.domains[0], lambda d, s: public_key_der(example_repo, d, s))
    records = domain_records(globex, globex.domains[0], repo.inventories["lab"], repo.service, keys)
    purposes = {r.name: r.purpose for r in records if r.name.endswith("_domainkey.globex.example")}
    assert purposes == {
        "g1._domainkey.globex.example": "DKIM public key",
        "g2._domainkey.globex.example": (
            "DKIM public key (rotation: publish before the switch; not signing yet)"
        ),
    }


BLOCK = """\
name: Globex  # the customer
domains:
  - name: globex.example  # main
    dkim:
      selector: g1  # signing since 2025
  - name: Globex-Mail.example
    dkim: {selector: "0755"}
"""


def test_set_dkim_keeps_each_mappings_style_quoting_and_comments() -> None:
    """The customer commands' editor: a block stays a block, one line stays one line, a
    selector YAML 1.1 would read as a number is quoted, nothing else moves."""
    publish = {"selector": "g1", "next": {"selector": "2027"}}
    after = set_dkim(BLOCK, "customers/globex.yaml", domain="globex.example", dkim=publish)
    assert after == BLOCK.replace(
        "      selector: g1  # signing since 2025\n",
        '      selector: g1  # signing since 2025\n      next: {selector: "2027"}\n',
    )
    switch = {"selector": "m2", "previous": {"selector": "0755", "retire_after": TODAY}}
    after = set_dkim(BLOCK, "customers/globex.yaml", domain="globex-mail.example", dkim=switch)
    # The field keeps its quotes (ruamel.yaml gives a new value the old one's style).
    assert after == BLOCK.replace(
        '{selector: "0755"}',
        '{selector: "m2", previous: {selector: "0755", retire_after: 2026-12-01}}',
    )
    with pytest.raises(RoundTripError) as refused:
        set_dkim(BLOCK, "customers/globex.yaml", domain="x.example", dkim=publish)
    assert str(refused.value) == "customers/globex.yaml has no sender domain 'x.example'"


def test_rotate_to_a_digits_only_selector_writes_it_as_a_string(example_repo: Path) -> None:
    rel = "customers/globex.yaml"
    before = (example_repo / rel).read_text()
    args = ["dkim", "rotate", "globex.example", "--selector", "2027", "--repo", str(example_repo)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert _git_diff(example_repo, rel, before) == [
        "-    dkim: {selector: g1}",
        '+    dkim: {selector: g1, next: {selector: "2027"}}',
    ]
    repo = load_repo(example_repo).repo
    assert repo is not None
    assert repo.customers["globex"].domains[0].dkim.published == ("g1", "2027")


@pytest.mark.parametrize(
    ("selector", "prepare", "message"),
    [
        (
            "../g2",
            None,
            "relayops dkim rotate: bad selector '../g2': must be a DKIM selector: one DNS "
            "label, lower-case letters, digits, '-'\n",
        ),
        (
            "g2",
            "secrets/dkim/globex.example.g2.pub.pem",
            "relayops dkim rotate: {root}/secrets/dkim/globex.example.g2.pub.pem exists "
            "without globex.example.g2.key.age: restore the pair or use another selector\n",
        ),
    ],
)
def test_a_refused_rotation_writes_nothing(
    example_repo: Path, selector: str, prepare: str | None, message: str
) -> None:
    if prepare is not None:
        (example_repo / prepare).write_text("left over\n")
    before = {p: p.read_bytes() for p in sorted(example_repo.rglob("*")) if p.is_file()}
    args = ["dkim", "rotate", "globex.example", "--selector", selector]
    result = CliRunner().invoke(cli, [*args, "--repo", str(example_repo)])
    assert (result.exit_code, result.output) == (2, message.format(root=example_repo))
    after = {p: p.read_bytes() for p in sorted(example_repo.rglob("*")) if p.is_file()}
    assert after == before
