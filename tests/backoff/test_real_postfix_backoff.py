"""Show (#12 step 3) with a real Postfix on loopback: a deferral storm at one ISP pauses
that IP × class, the other class keeps flowing, and the pause lifts by itself.

A private Postfix plays the output instance `postfix-ip-t1` (its configuration
directory under a private /etc, its log tag, its class transports, its transport table);
its transport_maps ask `relayops backoff serve` first; `relayops backoff watch --config
--follow` reads its maillog_file with the pause time of a compiled backoff.json. Two
receivers: one accepts (gmail.lab), one answers Yahoo's TSS04 until switched off
(yahoo.lab). Postfix's own retry is set to 5 minutes: the held mail leaving right after
the pause is the watcher's release (`postqueue -i`), not a retry.
"""

from __future__ import annotations

import json
import shutil
import smtplib
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.processes import POSTFIX_INTERNAL_SERVICES, free_port, run, stop_postfix, wait_port
from support.smtp_sink import SmtpSink

pytestmark = pytest.mark.real

INSTANCE = "postfix-ip-t1"
PAUSE = 8
TSS04 = (
    "421 4.7.0 [TSS04] Messages from 127.0.0.1 temporarily deferred due to unexpected "
    "volume or user complaints"
)


class Deferring:
    """A receiver that answers TSS04 to every RCPT while `defer` is set, else accepts."""

    def __init__(self) -> None:
        self.defer = True
        self.accepted = 0
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                def say(line: str) -> None:
                    self.wfile.write(line.encode() + b"\r\n")

                say("220 yahoo.lab ESMTP")
                while line := self.rfile.readline(4096):
                    verb = line[:4].decode(errors="replace").upper()
                    if verb in ("EHLO", "HELO", "MAIL", "RSET", "NOOP"):
                        say("250 ok")
                    elif verb == "RCPT":
                        say(TSS04 if outer.defer else "250 ok")
                        if outer.defer:
                            return
                    elif verb == "DATA":
                        say("354 go ahead")
                        while self.rfile.readline() not in (b".\r\n", b".\n", b""):
                            pass
                        outer.accepted += 1
                        say("250 queued")
                    else:
                        say("221 bye")
                        return

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def relayops(*args: str, **kw: object) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-c", "from relayops.cli import main; main()", *args]
    return subprocess.Popen(cmd, **kw)  # type: ignore[call-overload, no-any-return]


@pytest.fixture
def root() -> Iterator[Path]:
    found = Path(tempfile.mkdtemp(prefix="relayops-backoff-"))
    found.chmod(0o755)
    yield found
    shutil.rmtree(found, ignore_errors=True)


def instance(
    root: Path, *, gmail: int, yahoo: int, map_port: int, retry_seconds: int
) -> tuple[Path, Path, int]:
    """The private Postfix playing INSTANCE: (its config directory, its log, its SMTP port)."""
    etc = root / "etc" / INSTANCE
    etc.mkdir(parents=True)
    (etc / "transport").write_text(
        f"gmail.lab isp-gmail:[127.0.0.1]:{gmail}\nyahoo.lab isp-yahoo:[127.0.0.1]:{yahoo}\n"
    )
    log = root / "postfix.log"
    log.touch()
    smtp_port = free_port()
    (etc / "main.cf").write_text(
        f"compatibility_level = 3.6\nqueue_directory = {root}/queue\n"
        f"data_directory = {root}/data\nmaillog_file = {log}\nmaillog_file_prefixes = {root}\n"
        f"syslog_name = {INSTANCE}\nmail_owner = postfix\nsetgid_group = postdrop\n"
        "myhostname = o1.test\nmydestination =\nlocal_recipient_maps =\nalias_maps =\n"
        "alias_database =\ninet_interfaces = 127.0.0.1\ninet_protocols = ipv4\n"
        "mynetworks = 127.0.0.1/32\nsmtp_tls_security_level = none\n"
        "smtpd_relay_restrictions = permit_mynetworks, reject\n"
        "smtpd_reject_unlisted_recipient = no\n"
        f"queue_run_delay = {retry_seconds}s\nminimal_backoff_time = {retry_seconds}s\n"
        f"maximal_backoff_time = {retry_seconds}s\n"
        f"transport_maps = socketmap:inet:127.0.0.1:{map_port}:{INSTANCE}, "
        f"texthash:{etc}/transport\n"
    )
    (etc / "master.cf").write_text(
        f"127.0.0.1:{smtp_port} inet n - n - - smtpd\n"
        + POSTFIX_INTERNAL_SERVICES
        + "".join(
            f"isp-{c} unix - - n - - smtp\n  -o syslog_name={INSTANCE}/isp-{c}\n"
            for c in ("gmail", "yahoo")
        )
    )
    (root / "queue").mkdir()
    (root / "data").mkdir()
    shutil.chown(root / "data", "postfix", "postfix")
    return etc, log, smtp_port


def test_a_tss04_storm_pauses_only_that_class_and_lifts(root: Path) -> None:
    ok, yahoo = SmtpSink().start(), Deferring()
    map_port = free_port()
    # Postfix's own retry in 5 minutes: only the watcher's release can send sooner.
    conf, log, smtp_port = instance(
        root, gmail=ok.port, yahoo=yahoo.port, map_port=map_port, retry_seconds=300
    )
    pauses = root / "pauses.sqlite"
    serve = relayops("backoff", "serve", "--listen", f"127.0.0.1:{map_port}",
                     "--etc", str(root / "etc"), "--pauses", str(pauses))  # fmt: skip
    config = root / "backoff.json"
    config.write_text(json.dumps({"pause_seconds": {"yahoo": PAUSE}, "maillogs": [str(log)]}))
    watch_log = root / "watch.log"
    with watch_log.open("wb") as err:
        watch = relayops("backoff", "watch", "--config", str(config), "--follow",
                         "--etc", str(root / "etc"), "--pauses", str(pauses),
                         stderr=err)  # fmt: skip
    try:
        wait_port(map_port, proc=serve, what="backoff serve")
        deadline = time.monotonic() + 30
        while "event=watching" not in watch_log.read_text():
            assert watch.poll() is None and time.monotonic() < deadline, watch_log.read_text()
            time.sleep(0.1)
        run("postfix", "-c", str(conf), "start", log=log)
        wait_port(smtp_port, what="postfix")
        started = time.monotonic()
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=20) as client:
            for i in range(3):
                for domain in ("yahoo.lab", "gmail.lab"):
                    client.sendmail(
                        "s@acme.example", [f"r{i}@{domain}"], f"Subject: {i}\r\n\r\nx\r\n"
                    )
        # The storm pauses yahoo for t1 within a minute; gmail keeps flowing.
        status: dict[str, object] = {}
        while time.monotonic() - started < 60:
            out = subprocess.run(
                [sys.executable, "-c", "from relayops.cli import main; main()", "backoff",
                 "status", "--json", "--pauses", str(pauses)],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            status = json.loads(out)
            if status["pauses"]:
                break
            time.sleep(0.5)
        paused_after = time.monotonic() - started
        print(f"paused after {paused_after:.1f} s: {status}")
        print(watch_log.read_text())
        assert [(p["ip"], p["isp_class"], p["kind"]) for p in status["pauses"]] == [  # type: ignore[attr-defined, index]
            ("ip-t1", "yahoo", "yahoo-tss")
        ]
        assert len(ok.wait_for(3, timeout=30)) == 3
        # While paused, Postfix defers new yahoo.lab mail itself, without connecting.
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=20) as client:
            client.sendmail("s@acme.example", ["r3@yahoo.lab"], "Subject: 3\r\n\r\nx\r\n")
        deadline = time.monotonic() + 20
        while "relayops paused yahoo for ip-t1" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        yahoo.defer = False
        # The pause ends by itself and the watcher schedules the held mail at once (Postfix's
        # own retry would come 300 s after each deferral).
        # (r3, looked up during the pause, may wait for the second release 31 s later:
        # Postfix's resolver client caches its last answer for 30 s.)
        deadline = time.monotonic() + PAUSE + 31 + 15
        while yahoo.accepted < 4:
            assert time.monotonic() < deadline, watch_log.read_text() + log.read_text()[-6000:]
            time.sleep(0.5)
        delivered = time.monotonic() - started
        print(f"yahoo.lab delivered {delivered:.1f} s after the first send")
        assert delivered < 75
        assert "event=resume ip=ip-t1 class=yahoo scheduled=" in watch_log.read_text()
    finally:
        stop_postfix("postfix", conf, root / "queue")
        for proc in (serve, watch):
            proc.terminate()
            proc.wait(10)
        ok.stop()
        yahoo.server.shutdown()


def test_a_socketmap_that_does_not_answer_defers_and_loses_nothing(root: Path) -> None:
    """Until `relayops backoff serve` answers, Postfix keeps the mail (a lookup failure is
    temporary); once it answers, the mail leaves. Nothing bounces."""
    ok = SmtpSink().start()
    map_port = free_port()  # nothing listens there yet
    conf, log, smtp_port = instance(root, gmail=ok.port, yahoo=ok.port, map_port=map_port,
                                    retry_seconds=1)  # fmt: skip
    serve = None
    try:
        run("postfix", "-c", str(conf), "start", log=log)
        wait_port(smtp_port, what="postfix")
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=20) as client:
            refused = client.sendmail("s@acme.example", ["r0@gmail.lab"], "Subject: 0\r\n\r\nx\r\n")
        assert refused == {}  # accepted into the instance's queue
        deadline = time.monotonic() + 20
        while "status=deferred" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        queued = subprocess.run(["postqueue", "-c", str(conf), "-j"], capture_output=True,
                                text=True, check=True).stdout.splitlines()  # fmt: skip
        (entry,) = [json.loads(line) for line in queued]
        (rcpt,) = entry["recipients"]
        assert (entry["queue_name"], rcpt["address"], rcpt["delay_reason"]) == (
            "deferred",
            "r0@gmail.lab",
            "address resolver failure",
        )
        assert "status=bounced" not in log.read_text()
        assert ok.messages == []
        serve = relayops("backoff", "serve", "--listen", f"127.0.0.1:{map_port}",
                         "--etc", str(root / "etc"), "--pauses", str(root / "p"))  # fmt: skip
        wait_port(map_port, proc=serve, what="backoff serve")
        assert len(ok.wait_for(1, timeout=30)) == 1
        assert "status=bounced" not in log.read_text()
    finally:
        stop_postfix("postfix", conf, root / "queue")
        if serve is not None:
            serve.terminate()
            serve.wait(10)
        ok.stop()
