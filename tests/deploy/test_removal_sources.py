"""One source: what `plan` lists as removed is what the deploy removes (example repository)."""

from __future__ import annotations

from pathlib import Path

from relayops.compile.files import HostConfig
from relayops.compile.managed import EntryKind, compiled_manifest, removals
from relayops.compile.plan import host_diff
from relayops.deploy.counters import REDIS_DROPIN
from relayops.deploy.hostplan import INIT_SCRIPT, HostPlan, host_plan
from relayops.deploy.manifest import MANIFEST_PATH
from relayops.deploy.removal import decide, deploy_manifest
from relayops.deploy.state import Wanted
from relayops.deploy.target import load_target
from relayops.deploy.tls import CERT_PATH, KEY_PATH
from relayops.labca import Pem

ROOT = Path(__file__).resolve().parents[2]
RELAY1 = "relay1.relay.example.net"
RELAY2 = "relay2.relay.example.net"
STARK_DOMAINS = ("stark-shipping.example", "stark.example", "starkfreight.example")
STARK_DATA = [
    *(f"/etc/opendkim/keys/{d}/s1.private" for d in STARK_DOMAINS),
    "/var/vmail/stark",  # one mailbox per customer, shared by its logins (compile/mailbox.py)
    *(f"/etc/opendkim/keys/{d}" for d in STARK_DOMAINS),
]


def terminate(root: Path, customer: str) -> None:
    path = root / "customers" / f"{customer}.yaml"
    text = path.read_text()
    path.write_text(
        text.replace(
            "plan: ",
            "status: terminated\nstatus_reason: contract ended\nstatus_date: 2026-11-30\nplan: ",
            1,
        )
    )


def plan_of(config: HostConfig) -> HostPlan:
    return host_plan(
        config,
        secrets={s.source: b"key" for s in config.secrets},
        certificate=None,
        service_files=[],
        redis_files=None,
    )


def test_the_compiled_manifest_names_each_customer_s_data() -> None:
    configs = load_target(ROOT, "lab").configs
    relay1 = {e.path: e for e in compiled_manifest(configs[RELAY1]).entries}
    assert relay1["/etc/opendkim/keys/stark.example/s1.private"].customer == "stark"
    assert relay1["/etc/opendkim/keys/stark.example"].customer == "stark"
    assert relay1["/etc/opendkim/keys"].customer is None
    assert relay1["/var/vmail/stark"].kind is EntryKind.MAILBOX
    assert relay1["/etc/postfix/sender_logins"].customer is None
    # vandelay is terminated: neither keys nor a mailbox on the host it was on.
    assert not [p for p in relay1 if "vandelay" in p]
    relay2 = compiled_manifest(configs[RELAY2])
    # hooli is suspended: its mailbox stays, its key leaves until it is re-activated.
    assert "/var/vmail/hooli" in relay2.paths()
    assert not [p for p in relay2.paths() if p.startswith("/etc/opendkim/keys/hooli.example")]
    assert relay2.customers["hooli"] == ("hooli.example",)
    assert compiled_manifest(configs[RELAY1]).customers["stark"] == STARK_DOMAINS


def test_plan_and_deploy_remove_the_same_paths(example_repo: Path) -> None:
    before = load_target(example_repo, "lab").configs
    terminate(example_repo, "stark")
    after = load_target(example_repo, "lab").configs
    for host in (RELAY1, RELAY2):  # stark's pool, shared-eu, is on both relays
        planned = [c.path for c in host_diff(host, before[host], after[host]).changes
                   if c.change == "removed"]  # fmt: skip
        assert sorted(planned) == sorted(STARK_DATA)
        compiled = [e.path for e in removals(compiled_manifest(before[host]),
                                             compiled_manifest(after[host]))]  # fmt: skip
        assert compiled == STARK_DATA
        previous, wanted = (
            deploy_manifest(plan_of(before[host])),
            deploy_manifest(plan_of(after[host])),
        )
        assert [e.path for e in decide(previous, wanted, []).remove] == STARK_DATA


def test_plan_says_how_each_removal_happens(example_repo: Path) -> None:
    before = load_target(example_repo, "lab").configs[RELAY1]
    terminate(example_repo, "stark")
    after = load_target(example_repo, "lab").configs[RELAY1]
    notes = {c.path: c.diff for c in host_diff(RELAY1, before, after).changes}
    wait = "; once the host's queue holds no mail of stark\n"
    assert notes["/var/vmail/stark"] == "mailbox of stark, deleted with all its mail" + wait
    assert notes["/etc/opendkim/keys/stark.example"] == "directory, removed when empty" + wait
    assert notes["/etc/opendkim/keys/stark.example/s1.private"] == (
        "secret (was secrets/dkim/stark.example.s1.key.age)" + wait
    )
    # The maps lose stark's entries by being rendered again, not by a removal.
    assert "@stark.example" in notes["/etc/postfix/sender_logins"]
    assert notes["/etc/postfix/sender_logins"].count("\n-@stark") == 3


def test_the_deploy_records_what_only_it_writes_but_not_redis_s_drop_in() -> None:
    config = load_target(ROOT, "lab").configs[RELAY1]
    certificate = Pem(b"cert", b"key")
    plan = host_plan(
        config,
        secrets={s.source: b"key" for s in config.secrets},
        certificate=certificate,
        service_files=[Wanted(INIT_SCRIPT, b"#!/bin/sh\n", 0o755, "root", "root")],
        redis_files=[Wanted(REDIS_DROPIN, b"bind 127.0.0.1\n", 0o600, "redis", "redis")],
    )
    paths = deploy_manifest(plan).paths()
    compiled = compiled_manifest(config).paths()
    assert paths - compiled == {
        CERT_PATH,
        KEY_PATH,
        INIT_SCRIPT,
        "/etc/postfix/aliases.db",
        "/etc/postfix/mailboxes.db",
        "/etc/postfix/sender_egress.db",
        "/etc/postfix/sender_logins.db",
        "/etc/postfix/transport.db",
        "/etc/postfix-ip-dedicated-1/transport.db",
        "/etc/postfix-ip-dedicated-2/transport.db",
        "/etc/postfix-pool-shared-eu/transport.db",
        "/etc/relayops",
        "/etc/relayops/tls",
        "/opt/relayops",
        "/var/lib/relayops",
        "/var/log/relayops",
    }
    assert REDIS_DROPIN not in paths
    assert MANIFEST_PATH not in paths
