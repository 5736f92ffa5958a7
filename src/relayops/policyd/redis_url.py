"""The Redis store's URL: where Redis is, how to authenticate, TLS, Sentinel, durability.

Forms (docs/policyd.md, "Redis in production"):

    redis://[USER[:PASSWORD]@]HOST[:PORT][/DB][?OPTIONS]
    rediss://…                                   the same over TLS
    redis+sentinel://[USER[:PASSWORD]@]S1[:PORT],S2[:PORT],…/MASTER[/DB][?OPTIONS]
    rediss+sentinel://…                          sentinels and primary over TLS

OPTIONS: ``ca=PATH`` (the CA bundle TLS peers are verified against; default: the
system's), ``wait=N`` (after each batch, ``WAIT N`` replicas before answering),
``wait_timeout=MS`` (how long WAIT may take, default 100), ``credit=N`` (runs of up
to N recipients granted away from the warning and the limit, answered without a round
trip; 0 or 1: none; default 16) and ``credit_window=MS`` (how long a run may be used,
default 500; credit.py).

Parsed by hand rather than with urllib's ``urlsplit``, which takes one host only
(``.port`` raises on ``s1:26379,s2:26379``). The password never appears in
``repr()`` or in `redacted()`, which is what logs, metrics and errors show.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, quote, unquote

DEFAULT_PORT = 6379
DEFAULT_SENTINEL_PORT = 26379
DEFAULT_WAIT_MS = 100
DEFAULT_CREDIT = 16
DEFAULT_CREDIT_MS = 500
SCHEMES = ("redis", "rediss", "redis+sentinel", "rediss+sentinel")
_OPTIONS = ("ca", "wait", "wait_timeout", "credit", "credit_window")


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class RedisUrl:
    """A parsed store URL. `endpoints` are the sentinels when `master` is set."""

    endpoints: tuple[Endpoint, ...]
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca: str | None = None
    master: str | None = None
    wait: int = 0
    wait_ms: int = DEFAULT_WAIT_MS
    credit: int = DEFAULT_CREDIT
    credit_ms: int = DEFAULT_CREDIT_MS

    @property
    def sentinel(self) -> bool:
        return self.master is not None

    @classmethod
    def parse(cls, url: str) -> RedisUrl:
        """Raises ValueError naming what is wrong (never echoing the password)."""
        scheme, sep, rest = url.partition("://")
        if not sep or scheme not in SCHEMES:
            raise ValueError(
                f"expected one of {', '.join(s + '://' for s in SCHEMES)}; got {_safe(url)!r}"
            )
        rest, _, query = rest.partition("?")
        netloc, _, path = rest.partition("/")
        userinfo, at, hosts = netloc.rpartition("@")
        username = password = None
        if at:
            user, colon, secret = userinfo.partition(":")
            username = unquote(user) or None
            password = unquote(secret) if colon else None
        sentinel = scheme.endswith("+sentinel")
        default_port = DEFAULT_SENTINEL_PORT if sentinel else DEFAULT_PORT
        endpoints = tuple(_endpoint(h, default_port) for h in hosts.split(","))
        if not sentinel and len(endpoints) != 1:
            raise ValueError(
                f"{scheme}:// takes one HOST[:PORT]; use redis+sentinel:// for several"
            )
        segments = [unquote(s) for s in path.split("/")] if path else []
        master = None
        if sentinel:
            if not segments or not segments[0]:
                raise ValueError(f"{scheme}:// needs the master name: …@S1,S2,S3/MASTER[/DB]")
            master = segments.pop(0)
        if len(segments) > 1 or (segments and not _digits(segments[0])):
            raise ValueError(f"the database must be a number, got {'/'.join(segments)!r}")
        options = _options(query)
        return cls(
            endpoints=endpoints,
            db=int(segments[0]) if segments else 0,
            username=username,
            password=password,
            tls=scheme.startswith("rediss"),
            ca=options.get("ca"),
            master=master,
            wait=_number(options, "wait", 0),
            wait_ms=_number(options, "wait_timeout", DEFAULT_WAIT_MS),
            credit=_number(options, "credit", DEFAULT_CREDIT),
            credit_ms=max(1, _number(options, "credit_window", DEFAULT_CREDIT_MS)),
        )

    def with_password(self, password: str) -> RedisUrl:
        return replace(self, password=password)

    def redacted(self) -> str:
        """The URL as logs and errors show it: the password replaced by ``***``."""
        scheme = ("rediss" if self.tls else "redis") + ("+sentinel" if self.sentinel else "")
        user = quote(self.username or "", safe="")
        auth = f"{user}:***@" if self.password is not None else (f"{user}@" if user else "")
        path = f"/{quote(self.master, safe='')}" if self.master is not None else ""
        query = [f"ca={self.ca}"] if self.ca else []
        if self.wait:
            query += [f"wait={self.wait}", f"wait_timeout={self.wait_ms}"]
        if (self.credit, self.credit_ms) != (DEFAULT_CREDIT, DEFAULT_CREDIT_MS):
            query += [f"credit={self.credit}", f"credit_window={self.credit_ms}"]
        hosts = ",".join(str(e) for e in self.endpoints)
        return f"{scheme}://{auth}{hosts}{path}/{self.db}" + (
            "?" + "&".join(query) if query else ""
        )

    def ssl_context(self) -> ssl.SSLContext | None:
        """Verifying context (certificate chain and server name) when TLS is asked for."""
        if not self.tls:
            return None
        return ssl.create_default_context(cafile=self.ca)


def _safe(url: str) -> str:
    """`url` with anything between ``://`` and ``@`` hidden (it may hold a password)."""
    scheme, sep, rest = url.partition("://")
    _, at, tail = rest.partition("?")[0].rpartition("@")
    return f"{scheme}{sep}***@{tail}…" if at else url


def _endpoint(spec: str, default_port: int) -> Endpoint:
    host, port = spec, ""
    if spec.startswith("["):  # [IPv6]:PORT
        host, bracket, port = spec[1:].partition("]")
        if not bracket or (port and not port.startswith(":")):
            raise ValueError(f"bad address {spec!r}: expected [IPV6]:PORT")
        port = port[1:]
    elif ":" in spec:
        host, _, port = spec.rpartition(":")
    if not host or any(c in host for c in "@/?# "):
        raise ValueError(f"bad host {spec!r}: expected HOST[:PORT]")
    if port and not (_digits(port) and 0 < int(port) < 65536):
        raise ValueError(f"bad port in {spec!r}: expected 1-65535")
    return Endpoint(host, int(port) if port else default_port)


def _options(query: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ValueError(f"bad options {query!r}: expected NAME=VALUE&…") from None
    options: dict[str, str] = {}
    for name, value in pairs:
        if name not in _OPTIONS:
            raise ValueError(f"unknown option {name!r}; known: {', '.join(_OPTIONS)}")
        if name in options:
            raise ValueError(f"option {name!r} given twice")
        options[name] = value
    return options


def _number(options: dict[str, str], name: str, default: int) -> int:
    value = options.get(name)
    if value is None:
        return default
    if not _digits(value) or int(value) > 1_000_000:
        raise ValueError(f"option {name}={value!r}: expected a whole number 0-1000000")
    return int(value)


def _digits(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` also accepts ``²``, which ``int`` refuses)."""
    return text.isascii() and text.isdigit() and len(text) <= 10
