"""A real NSD authoritative server on 127.0.0.1:<free port>, serving given zone texts."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dns.exception
import dns.message
import dns.query

from support.processes import (
    cleanup_dir,
    free_udp_tcp_port,
    require,
    run,
    stop_process,
    wait_until,
    world_readable_tmpdir,
)

ADDRESS = "127.0.0.1"


def _config(directory: Path, port: int, zones: dict[str, str]) -> str:
    lines = [
        "server:",
        f"    ip-address: {ADDRESS}@{port}",
        f"    port: {port}",
        "    do-ip6: no",
        f'    zonesdir: "{directory}"',
        f'    pidfile: "{directory}/nsd.pid"',
        '    database: ""',
        f'    zonelistfile: "{directory}/zone.list"',
        f'    xfrdfile: "{directory}/xfrd.state"',
        f'    xfrdir: "{directory}"',
        f'    logfile: "{directory}/nsd.log"',
        '    username: ""',
        '    chroot: ""',
        "    server-count: 1",
        "    verbosity: 1",
        "remote-control:",
        "    control-enable: no",
    ]
    for name in zones:
        lines += ["zone:", f"    name: {name}", f'    zonefile: "{name}.zone"']
    return "\n".join(lines) + "\n"


def _answers(port: int, probe: str) -> bool:
    query = dns.message.make_query(probe, "SOA")
    try:
        dns.query.udp(query, ADDRESS, port=port, timeout=0.5)
    except (dns.exception.Timeout, OSError):
        return False
    return True


@contextmanager
def nsd_server(zones: dict[str, str]) -> Iterator[str]:
    """Serve `zones` ({origin: zone file text}); yields `127.0.0.1:PORT`."""
    binary = require("nsd", "nsd")
    directory = world_readable_tmpdir("relayops-nsd-")
    port = free_udp_tcp_port(ADDRESS)
    for name, text in zones.items():
        (directory / f"{name}.zone").write_text(text)
        run(require("nsd-checkzone", "nsd"), name, str(directory / f"{name}.zone"))
    conf = directory / "nsd.conf"
    conf.write_text(_config(directory, port, zones))
    run(require("nsd-checkconf", "nsd"), str(conf))
    proc = subprocess.Popen(
        [binary, "-d", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        wait_until(lambda: _answers(port, next(iter(zones))), "nsd", directory / "nsd.log")
        yield f"{ADDRESS}:{port}"
    finally:
        stop_process(proc)
        cleanup_dir(directory)
