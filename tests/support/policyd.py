"""The policy daemon's test harness: rules, a policy client, the daemon and Redis as processes."""

from __future__ import annotations

import copy
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from support.processes import free_port, stop_process, wait_port

RULES: dict[str, Any] = {
    "schema_version": 1,
    "service": {
        "name": "Example Relay",
        "domain": "relay.example.net",
        "notify_from": "noreply@relay.example.net",
    },
    "customers": {
        "acme": {
            "name": "Acme Corp",
            "status": "active",
            "status_reason": None,
            "timezone": "Europe/Paris",
            "daily_quota": 5000,
            "warn_ratio": 0.8,
            "max_message_bytes": 31457280,
            "contact": "ops@acme.example",
            "logins": ["acme-app", "acme-crm"],
            "domains": ["acme.example", "acme-mail.example"],
            "warmup": [],
        },
        "globex": {
            "name": "Globex",
            "status": "suspended",
            "status_reason": "unpaid invoice 2026-117",
            "timezone": "America/New_York",
            "daily_quota": 1000,
            "warn_ratio": 0.8,
            "max_message_bytes": 10485760,
            "contact": "it@globex.example",
            "logins": ["globex"],
            "domains": ["globex.example"],
            "warmup": [],
        },
        "initech": {
            "name": "Initech",
            "status": "terminated",
            "status_reason": "contract ended",
            "timezone": "UTC",
            "daily_quota": 1000,
            "warn_ratio": 0.8,
            "max_message_bytes": 10485760,
            "contact": "it@initech.example",
            "logins": ["initech"],
            "domains": ["initech.example"],
            "warmup": [],
        },
    },
    "notifications": {
        "warning": {
            "subject": "$name: $percent % of today's quota used",
            "body": "Hello $name,\n\n$count of $limit messages sent on $day ($timezone).\n",
        },
        "limit": {
            "subject": "$name: daily quota of $limit reached",
            "body": "Sending resumes at $resume_at $timezone.\n",
        },
    },
}


def rules_data(**customer_changes: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of RULES with per-customer field overrides, e.g. acme={"daily_quota": 5}."""
    data = copy.deepcopy(RULES)
    for cid, changes in customer_changes.items():
        data["customers"].setdefault(cid, copy.deepcopy(RULES["customers"]["acme"]))
        data["customers"][cid].update(changes)
    return data


def write_rules(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data, indent=2, sort_keys=True))
    return path


def request(
    state: str = "RCPT",
    *,
    login: str = "acme-app",
    sender: str = "news@acme.example",
    recipient: str = "someone@example.org",
    size: int = 0,
    **extra: str,
) -> dict[str, str]:
    """A policy request as Postfix 3.7 sends it (the attributes the daemon reads and others)."""
    attrs = {
        "request": "smtpd_access_policy",
        "protocol_state": state,
        "protocol_name": "ESMTP",
        "client_address": "192.0.2.10",
        "client_name": "client.example.org",
        "reverse_client_name": "client.example.org",
        "helo_name": "client.example.org",
        "sender": sender,
        "recipient": recipient,
        "recipient_count": "0",
        "queue_id": "",
        "instance": "1a2b.5f3e2d1c.8a7b.0",
        "size": str(size),
        "etrn_domain": "",
        "stress": "",
        "sasl_method": "PLAIN" if login else "",
        "sasl_username": login,
        "sasl_sender": "",
        "ccert_subject": "",
        "ccert_issuer": "",
        "ccert_fingerprint": "",
        "encryption_protocol": "TLSv1.3",
        "encryption_cipher": "TLS_AES_256_GCM_SHA384",
        "encryption_keysize": "256",
        "server_address": "127.0.0.1",
        "server_port": "587",
    }
    attrs.update(extra)
    return attrs


def encode(attrs: dict[str, str]) -> bytes:
    return "".join(f"{k}={v}\n" for k, v in attrs.items()).encode() + b"\n"


class PolicyClient:
    """A blocking policy-protocol client on one persistent connection."""

    def __init__(self, address: str | tuple[str, int], timeout: float = 5.0) -> None:
        family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(address)
        self.buf = b""

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_answer(self) -> str:
        while b"\n\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the daemon")
            self.buf += chunk
        answer, _, self.buf = self.buf.partition(b"\n\n")
        text = answer.decode()
        assert text.startswith("action="), text
        return text[len("action=") :]

    def ask(self, attrs: dict[str, str]) -> str:
        self.send_raw(encode(attrs))
        return self.read_answer()

    def close(self) -> None:
        self.sock.close()


def policyd_command(rules: Path, listen: str, store: str, *extra: str) -> list[str]:
    """`relayops policyd` with this interpreter (and so this checkout's PYTHONPATH)."""
    return [
        sys.executable, "-c", "from relayops.cli import main; main()", "policyd",
        "--rules", str(rules), "--listen", listen, "--store", store, *extra,
    ]  # fmt: skip


class Daemon:
    """`relayops policyd` as a real process on a loopback TCP port."""

    def __init__(
        self,
        tmp: Path,
        rules: Path,
        store: str,
        *extra: str,
        name: str = "d",
        milter: bool = False,
    ) -> None:
        self.tmp, self.rules, self.store, self.extra = tmp, rules, store, extra
        self.port = free_port()
        self.milter_port = free_port() if milter else None
        self.log_path = tmp / f"policyd-{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Daemon:
        extra = list(self.extra)
        if self.milter_port is not None:
            extra += ["--milter", f"127.0.0.1:{self.milter_port}"]
        cmd = policyd_command(self.rules, f"127.0.0.1:{self.port}", self.store, *extra)
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=log)
        log.close()
        wait_port(self.port, proc=self.proc)
        if self.milter_port is not None:
            wait_port(self.milter_port, proc=self.proc)
        return self

    def client(self) -> PolicyClient:
        return PolicyClient(("127.0.0.1", self.port))

    def send_signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        self.proc = None
        return rc

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, text: str, count: int = 1, timeout: float = 10.0) -> str:
        """The log once `text` appears `count` times: the daemon writes its INFO lines
        in batches (policyd/logsink.py), a few tens of milliseconds after the event."""
        deadline = time.monotonic() + timeout
        while (log := self.log()).count(text) < count:
            assert time.monotonic() < deadline, log
            time.sleep(0.02)
        return log


class RedisServer:
    """A private redis-server on loopback (Debian package); AOF in its dir survives a restart."""

    def __init__(self, tmp: Path) -> None:
        self.dir = tmp / "redis"
        self.dir.mkdir(exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--daemonize",
                "no",
                "--protected-mode",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port, proc=self.proc)
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, db=0, decode_responses=True)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None
