"""Record syntax through checkdmarc: SPF, DMARC, MTA-STS and TLS-RPT.

checkdmarc knows each record's grammar and the RFCs' limits better than a hand-written
parser, so it is the authority on whether a record is valid. Anything it looks up
(an SPF include, a DMARC report destination) goes through the resolver it is given:
the check's own, pointed at the check nameserver (`--nameserver`, the lab DNS).

What checkdmarc cannot do stays in relayops: evaluating SPF for one relay IP over one
DNS snapshot (spf.py), and comparing a DKIM key byte for byte with the repository's.
BIMI is left out: checkdmarc's BIMI parser downloads the logo and the mark certificate
over HTTPS, which a check run from the lab must not do (docs/checks.md).
"""

from __future__ import annotations

import dns.resolver
from checkdmarc import dmarc, mta_sts, smtp_tls_reporting, spf

# checkdmarc's own limit on one query; the check resolver's lifetime bounds it as well.
_TIMEOUT = 3.0


def _lifetime(resolver: dns.resolver.Resolver) -> float:
    return float(resolver.lifetime or _TIMEOUT)


def spf_syntax_error(record: str, domain: str, resolver: dns.resolver.Resolver) -> str | None:
    """checkdmarc's SPF syntax error for `record` of `domain`, or None when the syntax holds.

    Only syntax is judged here: lookup limits, void lookups and loops are counted over
    the DNS snapshot the relay-IP evaluation also uses (spf.py), so the two never disagree.
    """
    try:
        spf.parse_spf_record(
            record,
            domain,
            resolver=resolver,
            nameservers=[str(ns) for ns in resolver.nameservers],
            timeout=_lifetime(resolver),
        )
    except spf.SPFSyntaxError as exc:
        return str(exc).removeprefix(f"{domain}: ")
    except spf.SPFError:
        return None  # not a syntax error: judged over the snapshot
    return None


def dmarc_syntax_error(record: str, domain: str, resolver: dns.resolver.Resolver) -> str | None:
    """checkdmarc's DMARC error for the record at _dmarc.`domain`, or None when valid."""
    try:
        dmarc.parse_dmarc_record(
            record,
            domain,
            resolver=resolver,
            nameservers=[str(ns) for ns in resolver.nameservers],
            timeout=_lifetime(resolver),
            retries=0,
        )
    except dmarc.DMARCError as exc:
        return str(exc)
    return None


def mta_sts_syntax_error(record: str) -> str | None:
    """checkdmarc's error for an _mta-sts TXT record (RFC 8461 3.1), or None when valid."""
    try:
        mta_sts.parse_mta_sts_record(record)
    except mta_sts.MTASTSError as exc:
        return str(exc)
    return None


def tlsrpt_syntax_error(record: str) -> str | None:
    """checkdmarc's error for an _smtp._tls TXT record (RFC 8460 3), or None when valid."""
    try:
        smtp_tls_reporting.parse_smtp_tls_reporting_record(record)
    except smtp_tls_reporting.SMTPTLSReportingError as exc:
        return str(exc)
    return None
