"""One change to the lab at a time, undone on the way out (also when the test fails).

DNS changes replace one published zone and put the previous records back; relay changes
save the files they touch over SFTP, reload Postfix, and write the saved bytes back, so a
later deploy sees exactly the files it wrote.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from relayops.lab.dns import Record
from support.lab import Lab

MAIN_CF = "/etc/postfix/main.cf"
MASTER_CF = "/etc/postfix/master.cf"
CERT = "/etc/relayops/tls/fullchain.pem"
KEY = "/etc/relayops/tls/privkey.pem"

ZoneEdit = Callable[[list[Record]], list[Record]]


def without(name: str, rtype: str) -> ZoneEdit:
    """Drop every `rtype` record at absolute `name`."""

    def edit(records: list[Record]) -> list[Record]:
        kept = [r for r in records if not (r.name == name and r.type == rtype)]
        assert len(kept) < len(records), f"no {rtype} record at {name} to remove"
        return kept

    return edit


def replaced(name: str, rtype: str, value: str, *extra: Record) -> ZoneEdit:
    """The `rtype` record(s) at `name` replaced by one with `value` (plus `extra` records)."""

    def edit(records: list[Record]) -> list[Record]:
        old = [r for r in records if r.name == name and r.type == rtype]
        assert old, f"no {rtype} record at {name} to replace"
        kept = [r for r in records if r not in old]
        return [*kept, Record(name, rtype, old[0].ttl, value), *extra]

    return edit


@contextmanager
def zone_changed(lab: Lab, zone: str, edit: ZoneEdit) -> Iterator[None]:
    """Serve `edit(records)` for `zone` instead of what is published now."""
    original = lab.dns.published()[zone]
    lab.dns.publish({zone: edit(list(original))})
    try:
        yield
    finally:
        lab.dns.publish({zone: original})


@contextmanager
def ip_listed(lab: Lab, ip: str) -> Iterator[None]:
    """`ip` listed in the lab DNSBL (dnsbl.lab) for the duration."""
    assert ip not in lab.dns.listed(), f"{ip} is already listed in the lab DNSBL"
    lab.dns.list_ip(ip)
    try:
        yield
    finally:
        lab.dns.delist_ip(ip)


def _run(lab: Lab, host: str, command: str) -> str:
    status, out, err = lab.run(host, command)
    assert status == 0, f"{host}: `{command}` exited {status}: {err or out}"
    return out


def _read(lab: Lab, host: str, paths: Sequence[str]) -> dict[str, bytes]:
    client = lab.ssh(host)
    try:
        with client.open_sftp() as sftp:
            saved: dict[str, bytes] = {}
            for path in paths:
                with sftp.open(path, "rb") as handle:
                    saved[path] = handle.read()
            return saved
    finally:
        client.close()


def _write(lab: Lab, host: str, files: Mapping[str, bytes]) -> None:
    """Overwrite existing files in place (their mode and owner stay)."""
    client = lab.ssh(host)
    try:
        with client.open_sftp() as sftp:
            for path, data in files.items():
                with sftp.open(path, "wb") as handle:
                    handle.write(data)
    finally:
        client.close()


@contextmanager
def relay_files(lab: Lab, host: str, files: Mapping[str, bytes]) -> Iterator[None]:
    """`files` installed on relay `host` and Postfix reloaded; the saved ones put back after."""
    saved = _read(lab, host, list(files))
    try:
        _write(lab, host, files)
        _run(lab, host, "postfix reload")
        yield
    finally:
        _write(lab, host, saved)
        _run(lab, host, "postfix reload")


@contextmanager
def postfix_changed(lab: Lab, host: str, command: str) -> Iterator[None]:
    """`command` (postconf -e / -P ...) run on relay `host` and Postfix reloaded; main.cf and
    master.cf put back byte for byte after."""
    saved = _read(lab, host, [MAIN_CF, MASTER_CF])
    try:
        _run(lab, host, f"{command} && postfix reload")
        yield
    finally:
        _write(lab, host, saved)
        _run(lab, host, "postfix reload")
