"""The Redis store with ACL users and TLS, against redis-server running the deploy's config."""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections import Counter
from pathlib import Path

import pytest
import redis

from policyd.redis_nodes import PASSWORDS, Node, admin, data_node, make_tls
from policyd.test_redis import DEFER, count_key, hammer
from relayops.deploy import redis_conf as rc
from support.policyd import Daemon, request, rules_data, write_rules

pytestmark = pytest.mark.real


@pytest.fixture
def tls_files(tmp_path: Path) -> rc.TlsFiles:
    return make_tls(tmp_path / "tls")


@pytest.fixture
def tls_redis(tmp_path: Path, tls_files: rc.TlsFiles) -> object:
    node = data_node(tmp_path / "redis", tls=tls_files, plain_port=False).start()
    yield node
    node.kill()


def password_file(tmp: Path, password: str, mode: int = 0o600) -> Path:
    path = tmp / f"redis-password-{mode:o}"
    path.write_text(password + "\n")
    path.chmod(mode)
    return path


def raw(port: int, command: bytes) -> bytes:
    """One inline command on a fresh connection, the first reply line as sent."""
    with socket.create_connection(("127.0.0.1", port), 2) as sock:
        sock.sendall(command + b"\r\n")
        reply = b""
        while not reply.endswith(b"\r\n"):
            reply += sock.recv(1000)
        return reply


def test_clients_without_the_password_are_refused(tmp_path: Path) -> None:
    node = data_node(tmp_path / "redis").start()
    try:
        assert raw(node.port, b"GET relayops:count:acme:2026-12-01") == (
            b"-NOAUTH Authentication required.\r\n"
        )
        assert raw(node.port, f"AUTH {rc.POLICYD_USER} guess".encode()) == (
            b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        )
        assert raw(node.port, b"AUTH default nopass") == (
            b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        )
        # The daemon's user has its commands and keys only.
        daemon = redis.Redis(
            host="127.0.0.1", port=node.port, username=rc.POLICYD_USER, password=PASSWORDS.policyd
        )
        assert daemon.ping() is True
        with pytest.raises(redis.exceptions.NoPermissionError, match="'flushall' command"):
            daemon.flushall()
        with pytest.raises(
            redis.exceptions.NoPermissionError,
            match=r"^this user has no permissions to access one of the keys used as arguments$",
        ):
            daemon.get("other:key")
        with pytest.raises(redis.exceptions.NoPermissionError, match="'keys' command"):
            daemon.keys("*")
    finally:
        node.kill()


def test_daemon_with_a_wrong_password_tempfails_and_never_logs_it(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    node = data_node(tmp_path / "redis").start()
    try:
        rules = write_rules(tmp_path / "policy.json", rules_data())
        url = f"redis://{rc.POLICYD_USER}@127.0.0.1:{node.port}/0"
        d = Daemon(tmp_path, rules, url, "--store-password-file",
                   str(password_file(tmp_path, "not-the-password")))  # fmt: skip
        daemons.append(d.start())
        client = d.client()
        assert [client.ask(request()) for _ in range(3)] == [DEFER] * 3
        client.close()
        d.stop()
        log = d.log()
        assert "WRONGPASS invalid username-password pair or user is disabled." in log
        assert "not-the-password" not in log
        assert f"store=redis://{rc.POLICYD_USER}:***@127.0.0.1:{node.port}/0" in log
    finally:
        node.kill()


def test_password_file_readable_by_others_is_refused(tmp_path: Path, daemons: list[Daemon]) -> None:
    rules = write_rules(tmp_path / "policy.json", rules_data())
    loose = password_file(tmp_path, PASSWORDS.policyd, 0o644)
    d = Daemon(tmp_path, rules, "redis://u@127.0.0.1:1/0", "--store-password-file", str(loose))
    with pytest.raises(RuntimeError, match="service exited with 2"):
        d.start()
    assert (
        f"relayops policyd: Invalid value for --store-password-file: {loose} is mode 0644: "
        "others may read it; chmod 600 it"
    ) in d.log()


def test_plaintext_client_on_the_tls_port_is_refused(
    tls_redis: Node, tls_files: rc.TlsFiles
) -> None:
    with socket.create_connection(("127.0.0.1", tls_redis.port), 2) as sock:
        sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        sock.settimeout(2)
        try:
            answer = sock.recv(100)
        except ConnectionResetError:
            answer = b""
    assert answer == b""  # the server drops a client that does not speak TLS
    plain = redis.Redis(host="127.0.0.1", port=tls_redis.port, socket_timeout=2)
    with pytest.raises(redis.ConnectionError):
        plain.ping()


def test_daemon_refuses_an_unverified_server(
    tmp_path: Path, daemons: list[Daemon], tls_redis: Node, tls_files: rc.TlsFiles
) -> None:
    rules = write_rules(tmp_path / "policy.json", rules_data())
    secret = str(password_file(tmp_path, PASSWORDS.policyd))
    other_ca = make_tls(tmp_path / "other").ca
    user = rc.POLICYD_USER
    cases = {
        "plaintext": f"redis://{user}@127.0.0.1:{tls_redis.port}/0",
        "other CA": f"rediss://{user}@127.0.0.1:{tls_redis.port}/0?ca={other_ca}",
        "system CAs": f"rediss://{user}@127.0.0.1:{tls_redis.port}/0",
        # The certificate names redis.test and 127.0.0.1, not localhost.
        "wrong name": f"rediss://{user}@localhost:{tls_redis.port}/0?ca={tls_files.ca}",
    }
    for name, url in cases.items():
        d = Daemon(
            tmp_path, rules, url, "--store-password-file", secret, name=name.replace(" ", "-")
        )
        daemons.append(d.start())
        client = d.client()
        assert [client.ask(request()) for _ in range(2)] == [DEFER] * 2, name
        client.close()
        d.stop()
        log = d.log()
        expected = {
            "plaintext": "event=store_outage",
            "other CA": "CERTIFICATE_VERIFY_FAILED",
            "system CAs": "CERTIFICATE_VERIFY_FAILED",
            "wrong name": "Hostname mismatch, certificate is not valid for 'localhost'",
        }[name]
        assert expected in log, (name, log)
        assert PASSWORDS.policyd not in log
    assert counter_via_tls(tls_redis, tls_files) == 0


def counter_via_tls(node: Node, tls: rc.TlsFiles) -> int:
    client = redis.Redis(
        host="127.0.0.1", port=node.port, username=rc.POLICYD_USER, password=PASSWORDS.policyd,
        ssl=True, ssl_ca_certs=tls.ca,
    )  # fmt: skip
    with client:
        return int(client.get(count_key()) or 0)  # type: ignore[arg-type]


def test_daemons_with_acl_and_tls_share_one_quota_exactly(
    tmp_path: Path, daemons: list[Daemon], tls_redis: Node, tls_files: rc.TlsFiles
) -> None:
    quota = 500
    rules = write_rules(tmp_path / "policy.json", rules_data(acme={"daily_quota": quota}))
    secret = str(password_file(tmp_path, PASSWORDS.policyd))
    url = f"rediss://{rc.POLICYD_USER}@127.0.0.1:{tls_redis.port}/0?ca={tls_files.ca}"
    pair = []
    for i in range(2):
        d = Daemon(tmp_path, rules, url, "--store-password-file", secret, name=f"tls{i}")
        daemons.append(d)
        pair.append(d.start())
    answers: Counter[str] = Counter()
    lock = threading.Lock()
    threads = [
        threading.Thread(target=hammer, args=(d, 200, answers, lock))
        for d in pair
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    refused = (
        f"452 4.7.1 daily quota of {quota} reached for acme; sending resumes at 00:00 Europe/Paris"
    )
    assert answers == {"DUNNO": quota, refused: 1200 - quota}
    assert counter_via_tls(tls_redis, tls_files) == quota
    for d in pair:
        assert d.proc is not None
        cmdline = Path(f"/proc/{d.proc.pid}/cmdline").read_bytes()
        assert PASSWORDS.policyd.encode() not in cmdline
        assert d.stop(signal.SIGTERM) == 0
        log = d.log()
        assert PASSWORDS.policyd not in log
        assert "event=store_outage" not in log


def test_daemon_follows_a_restarted_redis_without_sentinel(
    tmp_path: Path, daemons: list[Daemon], tls_redis: Node, tls_files: rc.TlsFiles
) -> None:
    rules = write_rules(tmp_path / "policy.json", rules_data())
    secret = str(password_file(tmp_path, PASSWORDS.policyd))
    # Without credit, so that every answer in the outage is the store-error one
    # (test_redis_credit.py: credit granted before an outage is still answered from).
    url = f"rediss://{rc.POLICYD_USER}@127.0.0.1:{tls_redis.port}/0?ca={tls_files.ca}&credit=0"
    d = Daemon(tmp_path, rules, url, "--store-password-file", secret)
    daemons.append(d.start())
    client = d.client()
    assert [client.ask(request()) for _ in range(5)] == ["DUNNO"] * 5
    tls_redis.kill(signal.SIGTERM)  # AOF written: the 5 survive
    assert [client.ask(request()) for _ in range(3)] == [DEFER] * 3
    tls_redis.start()
    with admin(tls_redis.port, tls_files) as c:  # the AOF kept the count and its expiry
        assert (c.get(count_key()), 172800 - 5 <= c.ttl(count_key()) <= 172800) == (b"5", True)
    answers = []
    for _ in range(100):
        answers.append(client.ask(request()))
        if answers[-1] == "DUNNO":
            break
        threading.Event().wait(0.05)
    assert answers[-1] == "DUNNO" and set(answers[:-1]) <= {DEFER}
    assert counter_via_tls(tls_redis, tls_files) == 6
    client.close()
    assert d.stop() == 0
    assert d.log().count("event=store_recovered") == 1
    assert os.path.exists(tls_files.ca)
