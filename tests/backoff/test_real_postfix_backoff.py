"""Show (#12 step 3) with a real Postfix on loopback: a deferral storm at one ISP pauses
that IP × class, the other class keeps flowing, and the pause lifts by itself.

A private Postfix plays the output instance `postfix-ip-t1` (its log tag, its class
transports, its transport table); its transport_maps ask `relayops backoff serve` first;
`relayops backoff watch --follow` reads its maillog_file. Two receivers: one accepts
(gmail.lab), one answers Yahoo's TSS04 until switched off (yahoo.lab).
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


def test_a_tss04_storm_pauses_only_that_class_and_lifts(root: Path) -> None:
    ok, yahoo = SmtpSink().start(), Deferring()
    etc = root / "etc" / INSTANCE
    etc.mkdir(parents=True)
    (etc / "transport").write_text(
        f"gmail.lab isp-gmail:[127.0.0.1]:{ok.port}\nyahoo.lab isp-yahoo:[127.0.0.1]:{yahoo.port}\n"
    )
    pauses, log = root / "pauses.sqlite", root / "postfix.log"
    log.touch()
    smtp_port, map_port = free_port(), free_port()
    conf = root / "postfix"
    conf.mkdir()
    (conf / "main.cf").write_text(
        f"compatibility_level = 3.6\nqueue_directory = {root}/queue\n"
        f"data_directory = {root}/data\nmaillog_file = {log}\nmaillog_file_prefixes = {root}\n"
        f"syslog_name = {INSTANCE}\nmail_owner = postfix\nsetgid_group = postdrop\n"
        "myhostname = o1.test\nmydestination =\nlocal_recipient_maps =\nalias_maps =\n"
        "alias_database =\ninet_interfaces = 127.0.0.1\ninet_protocols = ipv4\n"
        "mynetworks = 127.0.0.1/32\nsmtp_tls_security_level = none\n"
        "smtpd_relay_restrictions = permit_mynetworks, reject\n"
        "queue_run_delay = 1s\nminimal_backoff_time = 1s\nmaximal_backoff_time = 2s\n"
        f"transport_maps = socketmap:inet:127.0.0.1:{map_port}:{INSTANCE}, "
        f"texthash:{etc}/transport\n"
    )
    (conf / "master.cf").write_text(
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
    serve = relayops("backoff", "serve", "--listen", f"127.0.0.1:{map_port}",
                     "--etc", str(root / "etc"), "--pauses", str(pauses))  # fmt: skip
    watch_log = root / "watch.log"
    with watch_log.open("wb") as err:
        watch = relayops("backoff", "watch", "--maillog", str(log), "--follow",
                         "--pause-seconds", str(PAUSE), "--pauses", str(pauses),
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
        # While paused, Postfix defers yahoo.lab itself, without connecting.
        deadline = time.monotonic() + 20
        while "relayops paused yahoo for ip-t1" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        yahoo.defer = False
        # The pause ends by itself; the next retry delivers.
        deadline = time.monotonic() + PAUSE + 40
        while yahoo.accepted < 3:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        print(f"yahoo.lab delivered {time.monotonic() - started:.1f} s after the first send")
    finally:
        stop_postfix("postfix", conf, root / "queue")
        for proc in (serve, watch):
            proc.terminate()
            proc.wait(10)
        ok.stop()
        yahoo.server.shutdown()
