"""A server that answers modern handshakes but stays silent to TLS 1.0/1.1 (a middlebox
dropping them, a stuck daemon): the legacy probe must not read silence as a refusal."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from relayops.checks.result import Status
from relayops.checks.tls import judge_observation, probe_tls
from support.certs import NOW, make_ca, make_leaf
from support.processes import free_port

pytestmark = pytest.mark.real

HOST = "relay1.relay.test"
ADDRESS = "127.0.0.1"
# TLS record header (5 bytes), handshake header (4), then the ClientHello's legacy_version.
_VERSION_AT = slice(9, 11)
_LEGACY = (b"\x03\x01", b"\x03\x02")  # TLS 1.0, 1.1 (TLS 1.2 and 1.3 say 0x0303)


def _serve(
    listener: socket.socket,
    ctx: ssl.SSLContext,
    held: list[socket.socket],
    stop: threading.Event,
) -> None:
    listener.settimeout(0.1)  # closing a socket does not wake accept(): poll the flag
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        conn.settimeout(5)
        head = conn.recv(11, socket.MSG_PEEK)
        if head[_VERSION_AT] in _LEGACY:
            held.append(conn)  # keep it open and say nothing
            continue
        try:
            with ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"220 relay1.relay.test ESMTP\r\n")
                tls.recv(64)
        except OSError:
            conn.close()


@pytest.fixture
def silent_to_legacy(tmp_path: Path) -> Iterator[int]:
    ca = make_ca()
    cert, key = make_leaf([HOST], issuer=ca).write(tmp_path, "leaf")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    port = free_port(ADDRESS)
    listener = socket.create_server((ADDRESS, port))
    held: list[socket.socket] = []
    stop = threading.Event()
    thread = threading.Thread(target=_serve, args=(listener, ctx, held, stop), daemon=True)
    thread.start()
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem())
    try:
        yield port
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
        for conn in held:
            conn.close()


def test_silence_to_legacy_tls_is_not_a_refusal(silent_to_legacy: int, tmp_path: Path) -> None:
    obs = probe_tls(
        ADDRESS,
        HOST,
        silent_to_legacy,
        "implicit-smtp",
        ca_bundle=str(tmp_path / "ca.pem"),
        timeout=1.0,
    )
    assert obs.version == "TLSv1.3"
    assert obs.legacy_accepted == {
        "TLSv1": "no answer within 1 s",
        "TLSv1.1": "no answer within 1 s",
    }
    results = judge_observation(f"{HOST}:465", f"host {HOST}", HOST, obs, NOW)
    legacy = [r for r in results if "refuses TLSv1" in r.subject]
    assert [r.status for r in legacy] == [Status.WARNING, Status.WARNING]
    assert legacy[0].message == (
        f"could not test TLSv1 on {HOST}:465 (no answer within 1 s); rerun (with a longer "
        "--timeout, or from a host whose OpenSSL still offers it)."
    )
