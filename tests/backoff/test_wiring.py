"""Back-off wired in (#12 step 3): policy -> compiled files, watcher, release, status, metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry

from relayops.backoff.config import BackoffConfig, BackoffConfigError, load_config
from relayops.backoff.follow import Follower
from relayops.backoff.metrics import BackoffCollector
from relayops.backoff.pauses import Pause, PauseBook
from relayops.backoff.release import release
from relayops.backoff.socketmap import instance_of, sender_of
from relayops.cli import cli
from relayops.compile.backoff import backoff_config, backoff_files
from relayops.compile.templates import Templates
from relayops.lab import receivers
from relayops.loader import load_repo
from support.policyd import rules_data, write_rules

ROOT = Path(__file__).resolve().parents[2]
RELAY = "relay1.relay.example.net"
TSS04 = receivers.reply(receivers.VOLUME_DEFERRAL, ip="198.18.0.11")


def _line(
    at: datetime, instance: str, isp: str, rcpt: str, reply: str, *, status: str = "deferred"
) -> str:
    stamp = f"{at:%b} {at.day:2d} {at:%H:%M:%S}"
    return (
        f"{stamp} relay1 {instance}/isp-{isp}/smtp[901]: 5AbCdE34: to=<{rcpt}>, "
        "relay=isp.lab[198.18.0.3]:25, delay=0.5, delays=0.1/0/0.2/0.2, dsn=4.7.0, "
        f"status={status} (host isp.lab[198.18.0.3] said: {reply} (in reply to RCPT TO "
        "command))\n"
    )


# ---- the policy, compiled -------------------------------------------------------------------


def test_the_examples_pause_times_and_logs_are_compiled_for_the_watcher() -> None:
    repo = load_repo(ROOT).repo
    assert repo is not None
    host = next(h for h in repo.inventories["lab"].hosts if h.name == RELAY)
    config = backoff_config(repo, host)
    assert config.pause_seconds == {"gmail": 900, "microsoft": 900, "yahoo": 30}
    assert config.maillogs == [
        "/var/log/postfix-ip-dedicated-1.log",
        "/var/log/postfix-ip-dedicated-2.log",
        "/var/log/postfix-pool-shared-eu.log",
    ]
    files = {f.path: f for f in backoff_files(repo, host, Templates(ROOT / "deploys/templates"))}
    assert {path: str(f.reload) for path, f in files.items()} == {
        "/etc/relayops/backoff.json": "relayops-backoff-watch",
        "/etc/default/relayops-backoff-serve": "relayops-backoff-serve",
        "/etc/default/relayops-backoff-watch": "relayops-backoff-watch",
    }
    assert load_config_bytes(files["/etc/relayops/backoff.json"].content) == config
    assert files["/etc/default/relayops-backoff-serve"].content.decode().splitlines()[-1] == (
        'RELAYOPS_BACKOFF_ARGS="--listen 127.0.0.1:10190 --metrics 127.0.0.1:10191"'
    )
    assert files["/etc/default/relayops-backoff-watch"].content.decode().splitlines()[-1] == (
        'RELAYOPS_BACKOFF_ARGS="--config /etc/relayops/backoff.json --follow"'
    )


def load_config_bytes(data: bytes) -> BackoffConfig:
    return BackoffConfig.model_validate_json(data)


def test_a_bad_config_file_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "backoff.json"
    with pytest.raises(BackoffConfigError, match=r"backoff\.json: cannot read"):
        load_config(path)
    path.write_text('{"pause_seconds": {"yahoo": "soon"}}')
    with pytest.raises(BackoffConfigError, match=r"backoff\.json: pause_seconds\.yahoo: "):
        load_config(path)
    path.write_text('{"pauses": {}}')
    with pytest.raises(BackoffConfigError, match=r"backoff\.json: pauses: Extra inputs"):
        load_config(path)


# ---- instance names -------------------------------------------------------------------------


def test_senders_are_the_instances_egresses() -> None:
    assert sender_of("postfix-ip-dedicated-1") == "ip-dedicated-1"
    assert sender_of("postfix-pool-shared-eu") == "pool-shared-eu"
    for other in ("postfix", "postfix-ip-", "postfix-x-1", "postfix-ip-../etc", "ip-a", ""):
        assert sender_of(other) is None
    assert instance_of("pool-shared-eu") == "postfix-pool-shared-eu"


# ---- the watcher ----------------------------------------------------------------------------


def _watch(tmp_path: Path, *args: str) -> tuple[int, str, list[dict[str, object]]]:
    pauses = tmp_path / "pauses.sqlite"
    result = CliRunner().invoke(cli, ["backoff", "watch", "--pauses", str(pauses), *args])
    status = CliRunner().invoke(cli, ["backoff", "status", "--json", "--pauses", str(pauses)])
    return result.exit_code, result.output, json.loads(status.output)["pauses"]


def test_watch_pauses_each_sender_for_its_classs_policy_time(tmp_path: Path) -> None:
    log = tmp_path / "postfix-pool-shared-eu.log"
    now = datetime.now(UTC).replace(microsecond=0)
    log.write_text(
        _line(now, "postfix-pool-shared-eu", "yahoo", "a@yahoo.com", TSS04)
        + _line(now, "postfix-ip-dedicated-1", "gmail", "b@gmail.com", "421 4.7.28 slow down")
        + _line(now, "postfix-ip-dedicated-1", "gmail", "c@gmail.com", "450 4.2.1 mailbox busy")
        + _line(
            now, "postfix-pool-shared-eu", "microsoft", "d@outlook.com", "250 ok", status="sent"
        )
    )
    config = tmp_path / "backoff.json"
    config.write_text(BackoffConfig(pause_seconds={"yahoo": 30}, maillogs=[str(log)]).to_json())
    code, _, pauses = _watch(tmp_path, "--config", str(config), "--pause-seconds", "600")
    assert code == 0
    since = now.timestamp()
    assert [(p["ip"], p["isp_class"], p["kind"], p["until"]) for p in pauses] == [
        ("ip-dedicated-1", "gmail", "gmail-4.7.28", since + 600),  # not in --config: default
        ("pool-shared-eu", "yahoo", "yahoo-tss", since + 30),  # the policy's 30 s
    ]
    assert pauses[1]["reply"] == TSS04


def test_watch_needs_a_log_or_a_config(tmp_path: Path) -> None:
    code, output, _ = _watch(tmp_path)
    assert (code, output) == (2, "relayops backoff watch: give --maillog FILE or --config FILE\n")
    code, output, _ = _watch(tmp_path, "--config", str(tmp_path / "none.json"))
    assert code == 2 and output.endswith("none.json: cannot read: No such file or directory\n")


# ---- following logs -------------------------------------------------------------------------


def test_the_follower_reads_appends_new_files_and_rotations(tmp_path: Path) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_text("old line\n")
    follower = Follower([a, b], from_end=True)
    assert list(follower.poll()) == []
    with a.open("a") as out:
        out.write("one\ntw")
    assert list(follower.poll()) == ["one"]  # the half-written line waits
    with a.open("a") as out:
        out.write("o\n")
    b.write_text("b1\n")  # appeared after the start: read from its beginning
    assert list(follower.poll()) == ["two", "b1"]
    a.rename(tmp_path / "a.log.1")  # rotated: the new file is read whole
    a.write_text("fresh\n")
    assert list(follower.poll()) == ["fresh"]
    a.write_text("")  # truncated, then written again
    assert list(follower.poll()) == []
    with a.open("a") as out:
        out.write("again\n")
    assert list(follower.poll()) == ["again"]
    follower.set_paths([b])
    assert follower.paths == [b]
    follower.close()


# ---- releasing held mail when a pause ends --------------------------------------------------


def _queue_entry(queue_id: str, *addresses: str, queue: str = "deferred") -> str:
    recipients = [{"address": a, "delay_reason": "x"} for a in addresses]
    return json.dumps({"queue_name": queue, "queue_id": queue_id, "recipients": recipients})


def test_only_the_deferred_mail_of_that_class_is_released(tmp_path: Path) -> None:
    lines = [
        _queue_entry("4XyZab12", "a@yahoo.com"),
        _queue_entry("4XyZab13", "b@gmail.com", "c@YMAIL.com"),  # one recipient in the class
        _queue_entry("5AbCdE34", "d@gmail.com"),  # another class
        _queue_entry("6ZzZzZ56", "e@isp.lab"),  # no class
        _queue_entry("7QqQqQ78", "f@yahoo.com", queue="active"),  # being delivered
        _queue_entry("../x", "g@yahoo.com"),  # not a queue id
        "not json",
        "[1, 2]",
    ]
    etc = tmp_path / "etc"
    (etc / "postfix-ip-t1").mkdir(parents=True)
    (etc / "postfix-ip-t1" / "transport").write_text(
        "gmail.com isp-gmail:\nyahoo.com isp-yahoo:\nymail.com isp-yahoo:\n"
    )
    calls: list[list[str]] = []

    def run(argv: Sequence[str]) -> str:
        calls.append(list(argv))
        return "\n".join(lines) if "-j" in argv else ""

    assert release("ip-t1", "yahoo", etc=etc, run=run) == 2
    config = str(etc / "postfix-ip-t1")
    assert calls == [
        ["postqueue", "-c", config, "-j"],
        ["postqueue", "-c", config, "-i", "4XyZab12"],
        ["postqueue", "-c", config, "-i", "4XyZab13"],
    ]


def test_ended_pauses_are_found_once(tmp_path: Path) -> None:
    book = PauseBook(tmp_path / "pauses.sqlite")
    try:
        book.pause(Pause("ip-t1", "yahoo", 100.0, 130.0, "yahoo-tss", TSS04))
        book.pause(Pause("pool-p", "gmail", 100.0, 200.0, "rate-limit", "x"))
        assert book.ended_between(100.0, 129.9) == []
        assert [p.ip for p in book.ended_between(129.9, 130.0)] == ["ip-t1"]
        assert book.ended_between(130.0, 199.0) == []
        assert [p.ip for p in book.ended_between(130.0, 200.0)] == ["pool-p"]
    finally:
        book.close()


# ---- where pauses show: feedback status, metrics --------------------------------------------


def test_feedback_status_lists_the_pauses_in_force(tmp_path: Path) -> None:
    pauses = tmp_path / "pauses.sqlite"
    book = PauseBook(pauses)
    now = time.time()
    book.pause(Pause("ip-t1", "yahoo", now, now + 600, "yahoo-tss", TSS04))
    book.pause(Pause("ip-t1", "gmail", now - 700, now - 100, "rate-limit", "x"))  # ended
    book.close()
    rules = write_rules(tmp_path / "policy.json", rules_data())
    args = ["feedback", "status", "--store", f"sqlite:{tmp_path / 'store.sqlite'}",
            "--rules", str(rules), "--pauses", str(pauses)]  # fmt: skip
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert list(payload) == ["ok", "customers", "pauses"]
    assert [(p["ip"], p["isp_class"], p["until"]) for p in payload["pauses"]] == [
        ("ip-t1", "yahoo", now + 600)
    ]
    text = CliRunner().invoke(cli, args, env={"COLUMNS": "300"}).output
    until = datetime.fromtimestamp(now + 600, UTC).strftime("%Y-%m-%d %H:%M:%S")
    assert f"back-off: ip-t1 × yahoo paused until {until} UTC (yahoo-tss): {TSS04}" in text
    missing = CliRunner().invoke(cli, [*args[:-1], str(tmp_path / "none"), "--json"])
    assert json.loads(missing.output)["pauses"] == []


def test_metrics_show_each_pause_and_the_answers(tmp_path: Path) -> None:
    book = PauseBook(tmp_path / "pauses.sqlite")
    try:
        book.pause(Pause("ip-t1", "yahoo", 1000.0, 1600.0, "yahoo-tss", TSS04))
        answers = {"retry": 2, "notfound": 5, "temp": 0}
        collector = BackoffCollector(book, answers, clock=lambda: 1100)
        registry = CollectorRegistry()
        registry.register(collector)
        text = generate_latest(registry).decode()
    finally:
        book.close()
    labels = 'ip="ip-t1",isp_class="yahoo",kind="yahoo-tss"'
    assert f"relayops_backoff_paused{{{labels}}} 1.0" in text
    assert f"relayops_backoff_pause_remaining_seconds{{{labels}}} 500.0" in text
    assert 'relayops_backoff_lookups_total{answer="retry"} 2.0' in text
    assert 'relayops_backoff_lookups_total{answer="notfound"} 5.0' in text


def test_the_pauses_are_runtime_state_that_no_deploy_or_drift_compares() -> None:
    """Drift is a dry deploy: it compares the plan's paths, and the pauses are none."""
    from relayops.backoff.names import DEFAULT_PAUSES
    from relayops.deploy.hostplan import BACKOFF_SERVICES, host_plan, init_script
    from relayops.deploy.state import Wanted
    from relayops.deploy.target import load_target

    target = load_target(ROOT, "lab")
    config = target.configs[RELAY]
    secrets = {s.source: b"x" for s in config.secrets}
    inits = [
        Wanted(init_script(s), b"#!/bin/sh\n", 0o755, "root", "root") for s in BACKOFF_SERVICES
    ]
    plan = host_plan(config, secrets=secrets, certificate=None, service_files=inits,
                     redis_files=None)  # fmt: skip
    assert [p for p in plan.state_paths() if p.startswith(str(DEFAULT_PAUSES))] == []
    assert {"/etc/init.d/relayops-backoff-serve", "/etc/init.d/relayops-backoff-watch"} <= set(
        plan.state_paths()
    )
    assert plan.services.index("relayops-backoff-serve") < plan.services.index("postfix")
    assert plan.services.index("relayops-backoff-watch") < plan.services.index("postfix")


def test_the_deploy_starts_both_before_postfix_and_restarts_them_for_new_code() -> None:
    from relayops.deploy.services import control_verb, service_actions

    services = ["relayops-policyd", "relayops-backoff-serve", "relayops-backoff-watch", "postfix",
                "postfix@postfix-ip-dedicated-1"]  # fmt: skip
    assert service_actions(services, {}, [], new_code=False) == [(s, "start") for s in services]
    running = dict.fromkeys(services, True)
    assert service_actions(services, running, [], new_code=True) == [
        ("relayops-policyd", "restart"),
        ("relayops-backoff-serve", "restart"),
        ("relayops-backoff-watch", "restart"),
    ]
    changed = ["relayops-backoff-serve", "relayops-backoff-watch"]
    assert service_actions(services, running, changed, new_code=False) == [
        ("relayops-backoff-serve", "reload"),
        ("relayops-backoff-watch", "reload"),
    ]
    # The socketmap reads its listen address at start; the watcher rereads on SIGHUP.
    assert control_verb("relayops-backoff-serve", "reload") == "restart"
    assert control_verb("relayops-backoff-watch", "reload") == "reload"
