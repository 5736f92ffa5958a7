"""Field types shared by the models: each one says what it accepts when it refuses."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_LOGIN = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,127}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SELECTOR = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")

# Dovecot password schemes we accept: slow, salted hashes only.
# https://doc.dovecot.org/configuration_manual/authentication/password_schemes/
STRONG_SCHEMES: dict[str, re.Pattern[str]] = {
    "ARGON2ID": re.compile(
        r"^\$argon2id\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$"
    ),
    "ARGON2I": re.compile(r"^\$argon2i\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$"),
    "SHA512-CRYPT": re.compile(r"^\$6\$(rounds=\d+\$)?[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{86}$"),
    "BLF-CRYPT": re.compile(r"^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$"),
}
_SCHEME = re.compile(r"^\{([A-Z0-9.-]+)\}(.*)$", re.DOTALL)


class Strict(BaseModel):
    """Base of every model: unknown fields are an error, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


def _slug(value: str) -> str:
    if not _SLUG.match(value):
        raise ValueError(
            "must be a DNS-safe slug: lower-case letters, digits and '-', 1-63 characters, "
            "not starting or ending with '-'"
        )
    return value


def normalize_domain(value: str) -> str:
    """Lower-case ASCII (IDNA 2003 via Python's codec) form of a domain name."""
    text = value.strip().rstrip(".").lower()
    if text.isascii():
        ascii_form = text
    else:
        try:
            ascii_form = text.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ValueError(f"is not a valid domain name ({exc})") from exc
    labels = ascii_form.split(".")
    if len(labels) < 2 or len(ascii_form) > 253 or not all(_LABEL.match(x) for x in labels):
        raise ValueError("must be a fully qualified domain name such as 'mail.example.com'")
    return ascii_form


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError("must be an e-mail address such as 'ops@example.com'")
    local, _, domain = value.rpartition("@")
    return f"{local}@{normalize_domain(domain)}"


def _login(value: str) -> str:
    if value != value.lower() or not _LOGIN.match(value):
        raise ValueError(
            "must be a lower-case SMTP login: letters, digits and . _ @ + -, up to 128 characters"
        )
    return value


def _selector(value: str) -> str:
    if not _SELECTOR.match(value):
        raise ValueError("must be a DKIM selector: one DNS label, lower-case letters, digits, '-'")
    return value


def _timezone(value: str) -> str:
    if value not in _zones():
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("must be an IANA time zone such as 'Europe/Paris' or 'UTC'") from exc
    return value


_ZONES: set[str] = set()


def _zones() -> set[str]:
    if not _ZONES:
        _ZONES.update(available_timezones())
    return _ZONES


def _password_hash(value: str) -> str:
    match = _SCHEME.match(value)
    accepted = ", ".join("{" + s + "}" for s in STRONG_SCHEMES)
    if match is None:
        raise ValueError(
            "must be a Dovecot password hash such as '{SHA512-CRYPT}$6$...' "
            "(a plaintext password is never accepted; make one with `doveadm pw -s SHA512-CRYPT`)"
        )
    scheme, rest = match.group(1), match.group(2)
    pattern = STRONG_SCHEMES.get(scheme)
    if pattern is None:
        raise ValueError(f"uses the weak or unknown scheme {{{scheme}}}; accepted: {accepted}")
    if not pattern.match(rest):
        raise ValueError(f"is not a well-formed {{{scheme}}} hash")
    return value


Slug = Annotated[str, AfterValidator(_slug)]
DomainName = Annotated[str, AfterValidator(normalize_domain)]
Email = Annotated[str, AfterValidator(_email)]
Login = Annotated[str, AfterValidator(_login)]
Selector = Annotated[str, AfterValidator(_selector)]
TimeZone = Annotated[str, AfterValidator(_timezone)]
PasswordHash = Annotated[str, AfterValidator(_password_hash)]
PositiveInt = Annotated[int, Field(gt=0, strict=True)]
Ratio = Annotated[float, Field(gt=0, le=1)]
Day = date
