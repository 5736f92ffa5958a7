"""What the deploy leaves on every relay: packages, daemons, ports, files, keys, config."""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import ssl

import pytest

from infra.conftest import Relay
from relayops.backoff.names import METRICS_PORT, SOCKETMAP_PORT
from relayops.compile.instances import output_instances
from relayops.compile.placement import host_egresses
from relayops.deploy.counters import redis_placement

pytestmark = pytest.mark.lab

PACKAGES = (
    "postfix", "opendkim", "opendkim-tools", "dovecot-imapd", "dovecot-lmtpd", "python3-venv",
)  # fmt: skip
PUBLIC_PORTS = (25, 465, 587, 993)


def _runs_redis(relay: Relay) -> bool:
    placement = redis_placement(relay.deployed.target.inventory)
    return placement is not None and placement.host.name == relay.model.name


def test_packages_installed(relay: Relay) -> None:
    wanted = [*PACKAGES, "redis-server"] if _runs_redis(relay) else list(PACKAGES)
    missing = [p for p in wanted if not relay.host.package(p).is_installed]
    assert missing == []


def test_daemons_run_as_their_users(relay: Relay) -> None:
    host = relay.host
    assert host.process.filter(comm="master", user="root"), "postfix master"
    assert host.process.filter(comm="opendkim", user="opendkim")
    assert host.process.filter(comm="dovecot", user="root")
    policyd = [p for p in host.process.filter(user="relayops") if "policyd" in p.args]
    assert policyd, "relayops policyd runs as user relayops"
    if _runs_redis(relay):
        assert host.process.filter(comm="redis-server", user="redis")


def test_public_ports_listen_on_every_address(relay: Relay) -> None:
    for port in PUBLIC_PORTS:
        assert relay.host.socket(f"tcp://0.0.0.0:{port}").is_listening, port


def _listening(relay: Relay, port: int) -> set[str]:
    """Every address a TCP socket listens on `port`, IPv6 included (v4-mapped as IPv4)."""
    found = set()
    for spec in relay.host.socket.get_listening_sockets():
        protocol, _, rest = spec.partition("://")
        address, _, found_port = rest.rpartition(":")
        if protocol != "tcp" or found_port != str(port):
            continue
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        found.add(str(mapped or ip))
    return found


def test_internal_endpoints_listen_on_loopback_only(relay: Relay) -> None:
    assert _listening(relay, 10040) == {"127.0.0.1"}  # policy daemon
    assert _listening(relay, 10041) == {"127.0.0.1"}  # its milter (docs/milter.md)
    assert _listening(relay, 8891) == {"127.0.0.1"}  # OpenDKIM milter
    # the back-off socketmap the output instances ask, and its metrics (docs/warmup.md)
    assert _listening(relay, SOCKETMAP_PORT) == {"127.0.0.1"}
    assert _listening(relay, METRICS_PORT) == {"127.0.0.1"}


def test_one_output_instance_per_sending_ip_runs_on_loopback(relay: Relay) -> None:
    """Each sending IP's Postfix instance is enabled, runs, and takes mail on loopback only."""
    instances = output_instances(relay.model)
    assert len(instances) == len(host_egresses(relay.model)) == 3
    listed = relay.host.check_output("postmulti -l -a")
    for instance in instances:
        assert f"{instance.name} " in listed and instance.config_dir in listed, listed
        assert relay.host.run(f"postmulti -i {instance.name} -p status").rc == 0
        assert _listening(relay, instance.port) == {"127.0.0.1"}


def test_redis_listens_on_loopback_and_the_lab_address_of_its_relay_only(relay: Relay) -> None:
    placement = redis_placement(relay.deployed.target.inventory)
    port = placement.port if placement is not None else 6379
    if placement is None or not _runs_redis(relay):
        assert _listening(relay, port) == set()
        return
    assert _listening(relay, port) == {"127.0.0.1", placement.address}
    assert _listening(relay, 6379) == set()  # TLS only: no plaintext port


# What redis-cli says when a TLS-only port drops its plaintext hello (which one: timing).
PLAINTEXT_REFUSED = {"Error: Connection reset by peer", "Error: Server closed the connection"}


def test_redis_refuses_clients_without_tls_or_without_the_password(relay: Relay) -> None:
    placement = redis_placement(relay.deployed.target.inventory)
    if placement is None or not _runs_redis(relay):
        pytest.skip("Redis runs on the counters host only")
    target = f"{placement.address} -p {placement.port}"
    ca = "--tls --cacert /etc/relayops/tls/ca.pem"
    password = '--pass "$(cat /etc/relayops/redis-password)"'
    # Without TLS the TLS-only port drops the connection, even with the right password.
    # (With a password redis-cli first prints "I/O error" for its AUTH; the last line counts.)
    for extra in ("", f"--no-auth-warning --user relayops-policyd {password}"):
        plain = relay.host.run(f"redis-cli -h {target} {extra} PING")
        assert (plain.rc, plain.stdout) == (1, ""), plain
        assert plain.stderr.strip().splitlines()[-1] in PLAINTEXT_REFUSED, plain.stderr
    anonymous = relay.host.run(f"redis-cli -h {target} {ca} GET relayops:x")
    assert anonymous.stdout.strip() == "NOAUTH Authentication required."
    wrong = relay.host.run(f"redis-cli -h {target} {ca} --user relayops-policyd --pass guess PING")
    assert "WRONGPASS" in wrong.stdout + wrong.stderr
    daemon = relay.host.run(
        f"redis-cli -h {target} {ca} --user relayops-policyd "
        '--pass "$(cat /etc/relayops/redis-password)" PING'
    )
    assert daemon.stdout.strip() == "PONG"


def test_every_compiled_file_is_on_the_host_byte_for_byte(relay: Relay) -> None:
    """plan = deploy: content, mode, owner and group of each file the compiler made."""
    wrong = []
    for item in relay.config.files:
        f = relay.host.file(item.path)
        found = (f.sha256sum if f.exists else None, f.mode, f.user, f.group)
        wanted = (hashlib.sha256(item.content).hexdigest(), item.mode, item.owner, item.group)
        if found != wanted:
            wrong.append((item.path, found, wanted))
    assert wrong == []


def test_private_keys_are_0600_and_owned_by_their_daemon(relay: Relay) -> None:
    assert relay.config.secrets, "the example relays sign for several domains"
    for secret in relay.config.secrets:
        f = relay.host.file(secret.path)
        assert (f.mode, f.user, f.group) == (0o600, secret.owner, secret.group), secret.path
        if secret.path.startswith("/etc/opendkim/"):
            assert (secret.owner, secret.group) == ("opendkim", "opendkim")
            assert f.contains("PRIVATE KEY")
    tls_key = relay.host.file("/etc/relayops/tls/privkey.pem")
    assert (tls_key.mode, tls_key.user, tls_key.group) == (0o600, "root", "root")
    keys = relay.host.file("/etc/opendkim/keys")
    assert (keys.mode, keys.user) == (0o750, "opendkim")


def _settings(text: str) -> dict[str, str]:
    """main.cf as name -> value, continuation lines joined, comments dropped."""
    settings: dict[str, str] = {}
    name = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace() and name is not None:
            settings[name] += " " + line.strip()
            continue
        name, _, value = line.partition("=")
        name = name.strip()
        settings[name] = value.strip()
    return {k: " ".join(v.split()) for k, v in settings.items()}


def test_postconf_n_equals_the_compiled_main_cf(relay: Relay) -> None:
    running = _settings(relay.host.check_output("postconf -n"))
    compiled = _settings(relay.config.file("/etc/postfix/main.cf").content.decode())
    assert running == compiled


def test_policy_daemon_answers_on_its_socket(relay: Relay) -> None:
    """A sender domain of another customer is refused, before anything is counted."""
    request = (
        "request=smtpd_access_policy\\nprotocol_state=RCPT\\nprotocol_name=ESMTP\\n"
        "sasl_username=acme-app\\nsender=a@globex.example\\nrecipient=b@isp.lab\\n"
        "client_address=198.18.0.1\\ninstance=infra-test\\n\\n"
    )
    script = (
        "import socket; s = socket.create_connection(('127.0.0.1', 10040), timeout=5); "
        f"s.sendall(b'{request}'); print(s.recv(4096).decode())"
    )
    answer = relay.host.check_output(f'python3 -c "{script}"')
    assert answer.startswith(("action=5", "action=REJECT")), answer
    assert "globex.example" in answer, answer


@pytest.mark.parametrize("port", [465, 993])
def test_implicit_tls_certificate_verifies_with_the_lab_ca(relay: Relay, port: int) -> None:
    context = ssl.create_default_context(cafile=str(relay.deployed.ca_file))
    with (
        socket.create_connection((relay.model.ssh_hostname, port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=relay.model.fqdn) as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        cert = tls.getpeercert() or {}
    alt_names = cert.get("subjectAltName", ())
    names = {str(entry[1]) for entry in alt_names if entry[0] == "DNS"}
    assert relay.model.fqdn in names


# What may listen on a relay, and where (deploy/hostplan and the compiled configs decide):
# the public mail ports on every address, sshd for the deploy, and the internal
# endpoints on loopback only (Redis also on its relay's address: test above; the
# output instances' handoff ports, one per sending IP: test above).
EXPECTED_PORTS = {22, 25, 465, 587, 993, 8891, 10040, 10041, SOCKETMAP_PORT, METRICS_PORT}


def test_nothing_else_listens(relay: Relay) -> None:
    """A new listener (a debug port, a metrics endpoint left open) fails here first."""
    ports = set()
    for spec in relay.host.socket.get_listening_sockets():
        protocol, _, rest = spec.partition("://")
        if protocol == "tcp":
            ports.add(int(rest.rpartition(":")[2]))
        elif protocol == "udp":
            raise AssertionError(f"unexpected UDP listener {spec}")
    placement = redis_placement(relay.deployed.target.inventory)
    redis = {placement.port} if placement is not None and _runs_redis(relay) else set()
    handoff = {instance.port for instance in output_instances(relay.model)}
    assert ports == EXPECTED_PORTS | redis | handoff


def test_the_policy_daemon_runs_exactly_the_locked_versions(relay: Relay) -> None:
    """Every package of the relay's venv is at the version requirements/relay.txt pins."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    from relayops.deploy.wheels import RELAY_LOCK, project_root
    from relayops.hostlayout import VENV

    python = f"{VENV}/bin/python"
    version = relay.host.check_output(
        f"{python} -c 'import platform; print(platform.python_version())'"
    )
    listing = relay.host.check_output(
        f"{python} -c 'import importlib.metadata as m; "
        'print("\\n".join(d.metadata["Name"] + "==" + d.version for d in m.distributions()))\''
    )
    installed = {
        canonicalize_name(line.split("==")[0]): line.split("==")[1]
        for line in listing.splitlines()
        if "==" in line
    }
    environment = {"python_full_version": version, "python_version": version.rsplit(".", 1)[0]}
    locked: dict[str, str] = {}
    lock = project_root() / RELAY_LOCK
    for line in lock.read_text().splitlines():
        if "==" not in line or line.startswith((" ", "#")):
            continue
        req = Requirement(line.split(" \\")[0])
        if req.marker is None or req.marker.evaluate(environment):
            locked[canonicalize_name(req.name)] = str(req.specifier).removeprefix("==")
    tooling = {"pip", "setuptools", "wheel", "relayops-policyd"}
    shipped = {k: v for k, v in installed.items() if k not in tooling}
    # The daemon's wheel set is its own dependency closure, each at the lock's version.
    assert shipped and {k: locked.get(k) for k in shipped} == shipped
    assert {"click", "pydantic", "prometheus-client", "redis"} <= set(shipped)
