"""The grammar of a counter-store URL: the one definition the daemon and `validate` share.

`relayops policyd --store` and the inventory's `relayops_shared_counters` both go
through `parse_store_url`, so a URL `relayops validate` accepts is one the daemon
starts with, and one it refuses is refused before any deploy.

Accepted forms (hand-written: `urllib.parse` cannot split a Sentinel host list):

    sqlite:PATH                                          one host (not for shared counters)
    redis://[[USER]:PASSWORD@]HOST[:PORT][/N]            plain Redis
    rediss://[[USER]:PASSWORD@]HOST[:PORT][/N]           Redis over TLS
    redis+sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/SERVICE[/N]

PORT defaults to 6379 (26379 for Sentinels), N to 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv6Address
from urllib.parse import unquote

REDIS_SCHEMES = ("redis", "rediss", "redis+sentinel")
SHARED_FORMS = (
    "redis://HOST[:PORT][/N], rediss://HOST[:PORT][/N] or "
    "redis+sentinel://HOST[:PORT][,HOST[:PORT]...]/SERVICE[/N]"
)
DEFAULT_PORT = {"redis": 6379, "rediss": 6379, "redis+sentinel": 26379}
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_SERVICE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


class StoreUrlError(ValueError):
    """Raised for a store URL the daemon would refuse; the message names the accepted forms."""


@dataclass(frozen=True, slots=True)
class StoreUrl:
    scheme: str  # sqlite, redis, rediss, redis+sentinel
    hosts: tuple[tuple[str, int], ...] = ()  # Redis, or the Sentinels
    db: int = 0
    username: str | None = None
    password: str | None = None
    service: str | None = None  # the Sentinel master's name
    path: str | None = None  # sqlite only

    @property
    def tls(self) -> bool:
        return self.scheme == "rediss"


def _host_port(text: str, url: str, default: int) -> tuple[str, int]:
    if text.startswith("["):  # [IPv6]:PORT
        host, _, rest = text[1:].partition("]")
        try:
            IPv6Address(host)
        except ValueError:
            raise StoreUrlError(f"{url!r}: {host!r} is not an IPv6 address") from None
        port_text = rest[1:] if rest.startswith(":") else ("" if not rest else None)
    else:
        host, sep, port_text = text.partition(":")
        if not _HOSTNAME.match(host):
            raise StoreUrlError(f"{url!r}: {host!r} is not a host name or IPv4 address")
        if not sep:
            port_text = ""
    if port_text is None:
        raise StoreUrlError(f"{url!r}: cannot read {text!r} as HOST[:PORT]")
    if port_text == "":
        return host, default
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise StoreUrlError(f"{url!r}: port {port_text!r} is not a number from 1 to 65535")
    return host, int(port_text)


def _db(text: str, url: str) -> int:
    if text == "":
        return 0
    if not text.isdigit():
        raise StoreUrlError(f"{url!r}: the database {text!r} must be a number")
    return int(text)


def parse_store_url(url: str) -> StoreUrl:
    """Split a store URL (forms in the module docstring); StoreUrlError when refused."""
    if url.startswith("sqlite:"):
        path = url[len("sqlite:") :]
        if not path:
            raise StoreUrlError(f"{url!r}: expected sqlite:PATH")
        return StoreUrl(scheme="sqlite", path=path)
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in REDIS_SCHEMES:
        raise StoreUrlError(f"expected sqlite:PATH, {SHARED_FORMS}; got {url!r}")
    if "?" in rest or "#" in rest:
        raise StoreUrlError(f"{url!r}: the daemon reads no URL options ('?…' or '#…')")
    netloc, _, path = rest.partition("/")
    userinfo, at, hostlist = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
        if not colon:  # redis://PASSWORD@HOST is ambiguous: Redis ACLs need user:password
            raise StoreUrlError(f"{url!r}: credentials are written USER:PASSWORD@ or :PASSWORD@")
    if not hostlist:
        raise StoreUrlError(f"{url!r}: no host")
    entries = hostlist.split(",")
    if scheme != "redis+sentinel" and len(entries) > 1:
        raise StoreUrlError(f"{url!r}: several hosts only with redis+sentinel://")
    hosts = tuple(_host_port(e, url, DEFAULT_PORT[scheme]) for e in entries)
    service = None
    if scheme == "redis+sentinel":
        service, _, db_text = path.partition("/")
        if not _SERVICE.match(service):
            raise StoreUrlError(f"{url!r}: expected redis+sentinel://HOSTS/SERVICE[/N]")
    else:
        db_text = path
    return StoreUrl(
        scheme=scheme,
        hosts=hosts,
        db=_db(db_text.rstrip("/") if scheme != "redis+sentinel" else db_text, url),
        username=username,
        password=password,
        service=service,
    )


def parse_shared_counters(url: str) -> StoreUrl:
    """A store several relays share: any Redis form, never a per-host SQLite file."""
    parsed = parse_store_url(url)
    if parsed.scheme == "sqlite":
        raise StoreUrlError(f"shared counters need {SHARED_FORMS}; sqlite is one host's only")
    for host, _port in parsed.hosts:
        # Every relay must reach it: a one-label name resolves only through a search domain.
        if "." not in host and ":" not in host:
            raise StoreUrlError(
                f"{url!r}: {host!r} is not an IP address or a fully qualified name "
                "every relay can resolve"
            )
    return parsed
