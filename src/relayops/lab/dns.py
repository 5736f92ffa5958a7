"""The lab DNS host: NSD serving zones the lab writes, PTRs for every lab address, a DNSBL.

`publish()` replaces the named zones and keeps the others. The lab's own
records (host addresses, PTRs, MX of the receiving domains) are merged into
whichever served zone is most specific for them, unless a published zone
defines the same name and type.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import dns.exception
import dns.message
import dns.query
import dns.rdatatype
import dns.zone

from relayops.lab import receivers
from relayops.lab import state as lab_state
from relayops.lab.errors import LabError, LabNotUpError, LabTimeoutError
from relayops.lab.runner import Runner
from relayops.lab.topology import DNSBL_ZONE, RELAY_DOMAIN, SINK_DOMAINS, Topology

DEFAULT_TTL = 300
TXT_CHUNK = 255  # RFC 1035 3.3: a character-string holds at most 255 octets
ZONES_DIR = "/etc/nsd/zones"  # inside the DNS host
CONTROL_SOCKET = "/run/nsd/nsd.ctl"


class ZoneError(LabError):
    """A record or zone the lab cannot serve."""


@dataclass(frozen=True)
class Record:
    """One resource record; `name` is relative to its zone, `@`, or absolute (ending in `.`)."""

    name: str
    type: str
    ttl: int
    value: str


# ---- pure: names, values, zone text ------------------------------------------------------


def absolute(name: str, zone: str) -> str:
    """`name` as an absolute domain name (lower case, trailing dot) within `zone`.

    `@` is the apex; a name ending in `.` is absolute; a name equal to the zone
    or ending in `.<zone>` is taken as already qualified; else it is relative.
    """
    zone_abs = zone.rstrip(".").lower() + "."
    lowered = name.lower()
    if lowered in ("@", ""):
        return zone_abs
    if lowered.endswith("."):
        return lowered
    if lowered + "." == zone_abs or (lowered + ".").endswith("." + zone_abs):
        return lowered + "."
    return f"{lowered}.{zone_abs}"


def in_zone(name_abs: str, zone: str) -> bool:
    zone_abs = zone.rstrip(".").lower() + "."
    return name_abs == zone_abs or name_abs.endswith("." + zone_abs)


def txt_value(value: str) -> str:
    """TXT rdata text: a value longer than 255 bytes becomes several quoted strings.

    An already quoted value (starting with `"`) is passed through unchanged.
    """
    if value.startswith('"'):
        return value
    raw = value.encode()
    chunks = [raw[i : i + TXT_CHUNK] for i in range(0, len(raw), TXT_CHUNK)] or [b""]
    quoted = []
    for chunk in chunks:
        text = chunk.decode("utf-8", errors="surrogateescape")
        quoted.append('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return " ".join(quoted)


def rdata_text(record: Record) -> str:
    return txt_value(record.value) if record.type.upper() == "TXT" else record.value


def render_zone(zone: str, records: Sequence[Record], *, serial: int, primary: str) -> str:
    """Zone file text with SOA and NS, validated by parsing it back with dnspython."""
    origin = zone.rstrip(".").lower() + "."
    ns = primary.rstrip(".") + "."
    lines = [
        f"$ORIGIN {origin}",
        f"$TTL {DEFAULT_TTL}",
        f"@ {DEFAULT_TTL} IN SOA {ns} hostmaster.{ns} {serial} 3600 600 86400 60",
        f"@ {DEFAULT_TTL} IN NS {ns}",
    ]
    for record in records:
        name = absolute(record.name, zone)
        if not in_zone(name, zone):
            raise ZoneError(f"record {record.name!r} lies outside zone {zone!r}")
        if record.type.upper() in ("SOA",) or (record.type.upper() == "NS" and name == origin):
            continue  # the lab writes the apex SOA and NS itself
        lines.append(f"{name} {record.ttl} IN {record.type.upper()} {rdata_text(record)}")
    text = "\n".join(lines) + "\n"
    try:
        dns.zone.from_text(text, origin=origin, relativize=False, check_origin=True)
    except (dns.exception.DNSException, ValueError) as exc:
        raise ZoneError(f"zone {zone!r} does not parse: {exc}") from exc
    return text


def reverse_name(ip: str) -> str:
    return ipaddress.IPv4Address(ip).reverse_pointer + "."


def reverse_zone(topo: Topology) -> str:
    a, b, c = str(topo.network.network_address).split(".")[:3]
    return f"{c}.{b}.{a}.in-addr.arpa"


def dnsbl_name(ip: str, zone: str = DNSBL_ZONE) -> str:
    """`198.18.0.11` → `11.0.18.198.dnsbl.lab.` (RFC 5782 2.1)."""
    return ".".join(reversed(ip.split("."))) + f".{zone.rstrip('.')}."


def base_records(topo: Topology, listed: Iterable[str] = ()) -> list[Record]:
    """The lab's own records, all absolute."""
    ttl = DEFAULT_TTL
    recs = [
        Record("gw.lab.", "A", ttl, topo.gateway),
        Record(reverse_name(topo.gateway), "PTR", ttl, "gw.lab."),
    ]
    for host in topo.hosts:
        fqdn = host.fqdn + "."
        recs.append(Record(fqdn, "A", ttl, host.address))
        recs += [Record(reverse_name(ip), "PTR", ttl, fqdn) for ip in host.addresses]
    for domain in SINK_DOMAINS:
        recs.append(Record(domain + ".", "MX", ttl, f"10 {topo.sink.fqdn}."))
    recs += [Record(name, rtype, ttl, value) for name, rtype, value in receivers.dns_records()]
    # RFC 5782 5: a DNSBL lists 127.0.0.2 as its test entry.
    for ip in ("127.0.0.2", *listed):
        recs.append(Record(dnsbl_name(ip), "A", ttl, "127.0.0.2"))
        recs.append(Record(dnsbl_name(ip), "TXT", ttl, f"listed in the relayops lab DNSBL: {ip}"))
    return recs


def base_zones(topo: Topology) -> list[str]:
    zones = ["lab", DNSBL_ZONE, RELAY_DOMAIN.split(".", 1)[1], reverse_zone(topo)]
    zones += [d for d in SINK_DOMAINS if not in_zone(d + ".", "lab")]
    return zones


def assemble(
    base: Sequence[Record],
    base_zone_names: Sequence[str],
    published: Mapping[str, Sequence[Record]],
) -> dict[str, list[Record]]:
    """All zones to serve: published ones as given plus the base records each one lacks."""
    zones: dict[str, list[Record]] = {z.rstrip(".").lower(): [] for z in base_zone_names}
    for zone, records in published.items():
        zones[zone.rstrip(".").lower()] = list(records)
    defined = {
        zone: {(absolute(r.name, zone), r.type.upper()) for r in recs}
        for zone, recs in zones.items()
    }
    for record in base:
        owners = [z for z in zones if in_zone(record.name, z)]
        if not owners:
            continue
        zone = max(owners, key=len)  # the most specific zone serves the name
        if (record.name, record.type.upper()) not in defined[zone]:
            zones[zone].append(record)
    return zones


def nsd_conf(topo: Topology, zones: Iterable[str]) -> str:
    lines = [
        "# managed by relayops lab; rewritten on every publish",
        "server:",
        f"    ip-address: {topo.dns.address}",
        "    ip-address: 127.0.0.1",
        "    do-ip6: no",
        f'    zonesdir: "{ZONES_DIR}"',
        '    pidfile: "/run/nsd/nsd.pid"',
        '    logfile: "/var/log/nsd.log"',
        "    server-count: 1",
        "    verbosity: 1",
        "remote-control:",
        "    control-enable: yes",
        f"    control-interface: {CONTROL_SOCKET}",
    ]
    for zone in sorted(zones):
        lines += ["zone:", f"    name: {zone}", f"    zonefile: {zone}.zone"]
    return "\n".join(lines) + "\n"


# ---- I/O: files in the DNS host, NSD, queries --------------------------------------------


class LabDNS:
    """The DNS host of one running lab."""

    def __init__(self, topo: Topology, runner: Runner | None = None) -> None:
        self.topo = topo
        self.runner = runner or Runner()
        self.root = topo.root(topo.dns)
        self.store = topo.state_dir / "dns"

    @classmethod
    def current(cls, index: int = 0) -> LabDNS:
        found = lab_state.load(index)
        if found is None:
            raise LabNotUpError("lab DNS")
        return cls(found.topology)

    def _load(self, name: str) -> dict[str, list[dict[str, object]]]:
        path = self.store / name
        return json.loads(path.read_text()) if path.exists() else {}

    def _save(self, name: str, data: object) -> None:
        self.store.mkdir(parents=True, exist_ok=True)
        (self.store / name).write_text(json.dumps(data, indent=1))

    def published(self) -> dict[str, list[Record]]:
        raw = self._load("published.json")
        return {
            zone: [
                Record(str(r["name"]), str(r["type"]), int(str(r["ttl"])), str(r["value"]))
                for r in recs
            ]
            for zone, recs in raw.items()
        }

    def listed(self) -> list[str]:
        path = self.store / "dnsbl.json"
        return list(json.loads(path.read_text())) if path.exists() else []

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise changes: several test sessions may publish into the same lab."""
        self.store.mkdir(parents=True, exist_ok=True)
        with (self.store / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def publish(self, zones: Mapping[str, Sequence[Record]]) -> None:
        """Serve `zones` (replacing zones of the same names), keep the rest, reload NSD."""
        with self._locked():
            self._publish(zones)

    def unpublish(self, names: Iterable[str]) -> None:
        """Stop serving the published zones `names` (the lab's own zones stay)."""
        with self._locked():
            self._unpublish(names)

    def list_ip(self, ip: str) -> None:
        """List `ip` in the lab DNSBL: `<reversed-ip>.dnsbl.lab A 127.0.0.2` (+ a TXT reason)."""
        ipaddress.IPv4Address(ip)
        with self._locked():
            self._set_listed(sorted(set(self.listed()) | {ip}))

    def delist_ip(self, ip: str) -> None:
        with self._locked():
            self._set_listed(sorted(set(self.listed()) - {ip}))

    def _publish(self, zones: Mapping[str, Sequence[Record]]) -> None:
        current = self.published()
        current.update({z.rstrip(".").lower(): list(recs) for z, recs in zones.items()})
        self._write(current, self.listed())
        self._save("published.json", {z: [asdict(r) for r in recs] for z, recs in current.items()})

    def _unpublish(self, names: Iterable[str]) -> None:
        current = self.published()
        for name in names:
            current.pop(name.rstrip(".").lower(), None)
        self._write(current, self.listed())
        self._save("published.json", {z: [asdict(r) for r in recs] for z, recs in current.items()})

    def _set_listed(self, listed: list[str]) -> None:
        self._write(self.published(), listed)
        self._save("dnsbl.json", listed)

    def write_initial(self) -> None:
        """Zone files and nsd.conf for a fresh lab (before NSD starts)."""
        self._write({}, [], reload=False)

    def _next_serial(self) -> int:
        path = self.store / "serial"
        previous = int(path.read_text()) if path.exists() else 0
        serial = max(previous + 1, int(time.time()))
        self.store.mkdir(parents=True, exist_ok=True)
        path.write_text(str(serial))
        return serial

    def _write(
        self,
        published: Mapping[str, Sequence[Record]],
        listed: Sequence[str],
        *,
        reload: bool = True,
    ) -> None:
        zones = assemble(base_records(self.topo, listed), base_zones(self.topo), published)
        serial = self._next_serial()
        rendered = {
            zone: render_zone(zone, recs, serial=serial, primary=self.topo.dns.fqdn)
            for zone, recs in zones.items()
        }  # render everything before touching a file: a bad record changes nothing
        zones_dir = self.root / ZONES_DIR.lstrip("/")
        zones_dir.mkdir(parents=True, exist_ok=True)
        for old in zones_dir.glob("*.zone"):
            if old.name[: -len(".zone")] not in rendered:
                old.unlink()
        for zone, text in rendered.items():
            (zones_dir / f"{zone}.zone").write_text(text)
        (self.root / "etc/nsd/nsd.conf").write_text(nsd_conf(self.topo, rendered))
        if reload:
            self._control("reconfig")
            self._control("reload")
            self.wait_serial(list(rendered), serial)

    def _control(self, verb: str) -> None:
        from relayops.lab.host import host_command  # host imports image; keep dns light

        self.runner.run(host_command(self.topo, self.topo.dns, ["nsd-control", verb]))

    def start(self) -> None:
        from relayops.lab.host import host_command

        script = "install -d -o nsd -g nsd /run/nsd /var/lib/nsd && exec nsd -c /etc/nsd/nsd.conf"
        self.runner.run(host_command(self.topo, self.topo.dns, ["/bin/sh", "-c", script]))
        self.wait_serial(["lab"], None)

    def soa_serial(self, zone: str, *, timeout: float = 1.0) -> int | None:
        """The SOA serial the DNS host serves for `zone`, or None when it does not answer."""
        query = dns.message.make_query(zone.rstrip(".") + ".", dns.rdatatype.SOA)
        try:
            response = dns.query.udp(query, self.topo.dns.address, timeout=timeout)
        except (dns.exception.Timeout, OSError):
            return None
        for rrset in response.answer:
            for rdata in rrset:
                return int(rdata.serial)
        return None

    def _serves(self, zone: str, serial: int | None) -> bool:
        got = self.soa_serial(zone, timeout=0.5)
        return got is not None and (serial is None or got >= serial)

    def wait_serial(
        self, zones: Sequence[str], serial: int | None, *, timeout: float = 15.0
    ) -> None:
        """Wait until every zone is served (with `serial` when given)."""
        deadline = time.monotonic() + timeout
        pending = list(zones)
        while pending and time.monotonic() < deadline:
            pending = [z for z in pending if not self._serves(z, serial)]
            if pending:
                time.sleep(0.1)
        if pending:
            raise LabTimeoutError(
                f"NSD on {self.topo.dns.address} does not serve {pending} (serial {serial}) after "
                f"{timeout} s; see {self.root / 'var/log/nsd.log'}"
            )


def publish(zones: Mapping[str, Sequence[Record]], *, index: int = 0) -> None:
    """Serve `zones` from the running lab's DNS host (see `LabDNS.publish`)."""
    LabDNS.current(index).publish(zones)


def list_ip(ip: str, *, index: int = 0) -> None:
    """List `ip` in the running lab's DNSBL zone `dnsbl.lab`."""
    LabDNS.current(index).list_ip(ip)


def delist_ip(ip: str, *, index: int = 0) -> None:
    LabDNS.current(index).delist_ip(ip)
