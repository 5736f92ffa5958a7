"""DNS checks: SPF, DKIM, DMARC per sender domain; PTR/FCrDNS per relay IP; the service MX.

`judge_*` functions are pure over captured answers; `run_dns_checks` queries through the
injected resolver and hands the answers to them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
from collections.abc import Callable
from functools import partial

import dns.resolver
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from relayops.checks import records, spf
from relayops.checks import resolver as q
from relayops.checks.parallel import gather
from relayops.checks.result import CheckInputError, CheckResult, error, ok, warning
from relayops.checks.target import CheckTarget, HostTarget, RelayIp, SenderDomain

CHECK = "dns"


def customer_group(customer: str) -> str:
    return f"customer {customer}"


def host_group(fqdn: str) -> str:
    return f"host {fqdn}"


# --- SPF ---------------------------------------------------------------------------------


def judge_spf(
    domain: str,
    group: str,
    snap: spf.SpfSnapshot,
    relay_ips: tuple[str, ...],
    *,
    advice: str | None = None,
    validate: Callable[[str], str | None] | None = None,
) -> list[CheckResult]:
    """Record present, single, well-formed, within 10 lookups; each relay IP passes.

    `advice` is the record the repository says to publish (`relayops plan`). `validate`
    is checkdmarc's syntax check (records.py), the authority on well-formedness; the
    own parser's errors count too, since the relay-IP evaluation cannot use a record
    it cannot read.
    """
    subject = f"{domain} SPF"
    records = snap.txt.get(domain.lower(), [])
    wanted = advice or "v=spf1 {} -all".format(
        " ".join(f"ip{ipaddress.ip_address(ip).version}:{ip}" for ip in relay_ips)
    )
    if not records:
        return [
            error(
                CHECK,
                group,
                subject,
                f"{domain} has no SPF record; publish TXT `{wanted}` "
                "so receivers accept mail sent through the relay.",
            )
        ]
    if len(records) > 1:
        return [
            error(
                CHECK,
                group,
                subject,
                f"{domain} publishes {len(records)} SPF records, which is a permerror "
                "(RFC 7208 4.5); merge them into one TXT record.",
            )
        ]
    record = spf.parse_spf(records[0])
    syntax_error = validate(records[0]) if validate is not None else None
    if syntax_error is not None or record.errors:
        return [
            error(
                CHECK,
                group,
                subject,
                f"SPF record of {domain} is invalid ({syntax_error or '; '.join(record.errors)}); "
                "fix the record's syntax.",
            )
        ]
    results: list[CheckResult] = []
    lookups, problems = spf.count_lookups(domain, snap)
    if lookups > spf.MAX_LOOKUPS:
        results.append(
            error(
                CHECK,
                group,
                subject,
                f"SPF record of {domain} needs {lookups} DNS lookups, more than the "
                f"{spf.MAX_LOOKUPS} RFC 7208 4.6.4 allows, so receivers get a permerror; "
                "replace includes by ip4:/ip6: mechanisms.",
            )
        )
    elif len(void := spf.void_lookups(domain, snap)) > spf.MAX_VOID_LOOKUPS:
        results.append(
            error(
                CHECK,
                group,
                subject,
                f"SPF record of {domain} has {len(void)} terms naming nothing "
                f"({', '.join(void)}), more than the {spf.MAX_VOID_LOOKUPS} void lookups "
                "RFC 7208 4.6.4 allows; remove them.",
            )
        )
    elif problems:
        results.append(
            error(
                CHECK,
                group,
                subject,
                f"SPF record of {domain} is broken: {'; '.join(problems)}; "
                "fix the referenced records.",
            )
        )
    elif any(t.mechanism == "all" and t.qualifier == "+" for t in record.terms):
        results.append(
            warning(
                CHECK,
                group,
                subject,
                f"SPF record of {domain} ends in +all, authorising every host on the "
                "Internet; end it with -all or ~all.",
            )
        )
    else:
        results.append(
            ok(CHECK, group, subject, f"SPF record of {domain} is valid ({lookups} lookups).")
        )
    for ip in relay_ips:
        verdict = spf.evaluate(domain.lower(), ip, snap)
        sub = f"{domain} SPF authorises {ip}"
        if verdict == "pass":
            results.append(ok(CHECK, group, sub, f"SPF of {domain} passes relay IP {ip}."))
        elif verdict == "unknown":
            results.append(
                warning(
                    CHECK,
                    group,
                    sub,
                    f"cannot tell whether SPF of {domain} passes {ip}: a ptr, exists or "
                    f"macro term comes first; put ip{ipaddress.ip_address(ip).version}:{ip} "
                    "before it.",
                )
            )
        else:
            results.append(
                error(
                    CHECK,
                    group,
                    sub,
                    f"SPF of {domain} gives {verdict} for relay IP {ip}; add "
                    f"ip{ipaddress.ip_address(ip).version}:{ip} (or the relay's include) "
                    "before the all term.",
                )
            )
    return results


# --- DKIM --------------------------------------------------------------------------------


def parse_tags(text: str) -> dict[str, str]:
    """`tag=value; ...` lists of DKIM (RFC 6376 3.2) and DMARC (RFC 7489 6.4)."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            tags.setdefault(name.strip().lower(), value.strip())
    return tags


def expected_key_bytes(public_key: str | bytes) -> bytes:
    """What `p=` must decode to for this key: SubjectPublicKeyInfo DER for RSA
    (RFC 6376 3.6.1), the raw 32 bytes for Ed25519 (RFC 8463 4.2). Accepts PEM or DER."""
    data = public_key.encode() if isinstance(public_key, str) else public_key
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_public_key(data)
        else:
            key = serialization.load_der_public_key(data)
    except ValueError as exc:
        raise CheckInputError(f"expected DKIM public key is not a PEM/DER key: {exc}") from exc
    if isinstance(key, Ed25519PublicKey):
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _fingerprint(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()[:16]


def judge_dkim(
    domain: str, group: str, selector: str, records: list[str], expected: bytes
) -> CheckResult:
    """The key at `selector._domainkey.domain` is exactly the key the relay signs with."""
    name = f"{selector}._domainkey.{domain}"
    subject = f"{domain} DKIM {selector}"
    fix = f"publish the TXT record that `relayops dkim` prints for {domain} at {name}"
    keys = [r for r in records if "p=" in r.replace(" ", "")]
    if not keys:
        return error(CHECK, group, subject, f"no DKIM key at {name}; {fix}.")
    if len(keys) > 1:
        return error(
            CHECK, group, subject, f"{len(keys)} DKIM records at {name}; keep only one: {fix}."
        )
    tags = parse_tags(keys[0])
    if tags.get("v", "DKIM1") != "DKIM1":
        return error(CHECK, group, subject, f"DKIM record at {name} has v={tags['v']}; {fix}.")
    published = "".join(tags.get("p", "").split())
    if not published:
        return error(CHECK, group, subject, f"DKIM key at {name} is revoked (empty p=); {fix}.")
    try:
        der = base64.b64decode(published, validate=True)
    except binascii.Error:
        return error(CHECK, group, subject, f"p= at {name} is not valid base64; {fix}.")
    if der != expected:
        return error(
            CHECK,
            group,
            subject,
            f"DKIM key at {name} ({_fingerprint(der)}) is not the signing key "
            f"({_fingerprint(expected)}), so signatures will fail; {fix}.",
        )
    return ok(CHECK, group, subject, f"DKIM key at {name} matches the signing key.")


# --- DMARC -------------------------------------------------------------------------------

# DMARC syntax is checkdmarc's (records.py); the judge gets it as `validate`, so it stays
# pure over the captured answers and tests can hand it any validator.
DmarcValidator = Callable[[str], str | None]


def judge_dmarc(
    domain: str, group: str, records: list[str], validate: DmarcValidator
) -> CheckResult:
    name = f"_dmarc.{domain}"
    subject = f"{domain} DMARC"
    dmarc = [r for r in records if r.replace(" ", "").lower().startswith("v=dmarc1")]
    if not dmarc:
        return error(
            CHECK,
            group,
            subject,
            f"no DMARC record at {name}; publish TXT `v=DMARC1; p=none; "
            f"rua=mailto:dmarc@{domain}` and tighten p= once reports are clean.",
        )
    if len(dmarc) > 1:
        return error(
            CHECK,
            group,
            subject,
            f"{len(dmarc)} DMARC records at {name}, so receivers ignore all; keep one.",
        )
    problem = validate(dmarc[0])
    if problem is not None:
        message = f"DMARC record at {name} is invalid ({problem}); fix it."
        return error(CHECK, group, subject, message)
    policy = parse_tags(dmarc[0]).get("p", "none").lower()
    return ok(CHECK, group, subject, f"DMARC record at {name} is valid (p={policy}).")


# --- MTA-STS and TLS-RPT of the service domain --------------------------------------------

# (what, label under the service domain, version tag, checkdmarc's syntax check)
SERVICE_RECORDS: tuple[tuple[str, str, str, Callable[[str], str | None]], ...] = (
    ("MTA-STS", "_mta-sts", "v=STSv1", records.mta_sts_syntax_error),
    ("TLS-RPT", "_smtp._tls", "v=TLSRPTv1", records.tlsrpt_syntax_error),
)


def judge_service_record(
    what: str,
    name: str,
    version: str,
    group: str,
    found: list[str],
    validate: Callable[[str], str | None],
) -> list[CheckResult]:
    """Optional records: none published is no finding; what is published must be valid."""
    subject = f"{name} {what}"
    tagged = [r for r in found if r.replace(" ", "").lower().startswith(version.lower())]
    if not tagged:
        return []
    if len(tagged) > 1:
        message = f"{len(tagged)} {what} records at {name}, so senders ignore all; keep one."
        return [error(CHECK, group, subject, message)]
    problem = validate(tagged[0])
    if problem is not None:
        message = f"{what} record at {name} is invalid ({problem}); fix it."
        return [error(CHECK, group, subject, message)]
    return [ok(CHECK, group, subject, f"{what} record at {name} is valid.")]


# --- PTR / FCrDNS and MX -----------------------------------------------------------------


def judge_ptr(
    ip: str, helo: str, group: str, ptr_names: list[str], forward: list[str]
) -> CheckResult:
    """PTR exists, equals the HELO name, and the name resolves back to the IP (FCrDNS)."""
    subject = f"{ip} PTR"
    helo = helo.lower().rstrip(".")
    if not ptr_names:
        return error(
            CHECK,
            group,
            subject,
            f"{ip} has no PTR record, and many receivers refuse such senders; ask the "
            f"IP's provider to set its PTR to {helo}.",
        )
    if helo not in ptr_names:
        return error(
            CHECK,
            group,
            subject,
            f"PTR of {ip} is {', '.join(ptr_names)} but the relay says HELO {helo}; set "
            f"the PTR to {helo} (or the transport's HELO name to the PTR).",
        )
    if ip not in forward:
        seen = ", ".join(forward) or "nothing"
        return error(
            CHECK,
            group,
            subject,
            f"{helo} (PTR of {ip}) resolves to {seen}, not back to {ip}; add the A/AAAA "
            f"record {helo} -> {ip}.",
        )
    if len(ptr_names) > 1:
        return warning(
            CHECK,
            group,
            subject,
            f"{ip} has {len(ptr_names)} PTR records; keep only {helo}.",
        )
    return ok(CHECK, group, subject, f"{ip} <-> {helo}: PTR matches HELO and resolves back.")


def judge_mx(
    domain: str,
    group: str,
    exchanges: list[tuple[int, str]],
    resolved: dict[str, list[str]],
    expected: tuple[str, ...],
) -> CheckResult:
    subject = f"{domain} MX"
    hosts = [h for _, h in exchanges]
    if not hosts or hosts == [""]:
        what = "a null MX" if hosts else "no MX record"
        return error(
            CHECK,
            group,
            subject,
            f"{domain} has {what}, so bounces and feedback reports cannot reach the "
            "service; publish MX records pointing at the relay hosts.",
        )
    dangling = [h for h in hosts if not resolved.get(h)]
    if dangling:
        return error(
            CHECK,
            group,
            subject,
            f"MX host(s) {', '.join(dangling)} of {domain} have no address; add A records.",
        )
    want = {h.lower().rstrip(".") for h in expected}
    if want and set(hosts) != want:
        return error(
            CHECK,
            group,
            subject,
            f"MX of {domain} is {', '.join(hosts)} but the inventory expects "
            f"{', '.join(sorted(want))}; update the MX records.",
        )
    return ok(CHECK, group, subject, f"MX of {domain}: {', '.join(hosts)}.")


# --- the runner --------------------------------------------------------------------------


def _unanswered(group: str, subject: str, exc: q.DnsQueryError) -> CheckResult:
    # An error, not a warning: receivers asking the same DNS get a temperror and defer
    # or junk the mail, and a check that saw nothing must not pass.
    return error(
        CHECK,
        group,
        subject,
        f"DNS did not answer ({exc}); check the zone's nameservers (or --nameserver).",
    )


def service_group(domain: str) -> str:
    return f"service {domain}"


def check_domain(resolver: dns.resolver.Resolver, domain: SenderDomain) -> list[CheckResult]:
    """SPF passes for each sending IP, DKIM keys byte-exact, DMARC present and sound.

    A domain without a customer is the service domain's own mail (notices, bounces).
    """
    group = customer_group(domain.customer) if domain.customer else service_group(domain.name)
    results: list[CheckResult] = []
    try:
        snapshot = spf.fetch_spf(resolver, domain.name)
        validate = partial(records.spf_syntax_error, domain=domain.name, resolver=resolver)
        results += judge_spf(
            domain.name, group, snapshot, domain.relay_ips, advice=domain.spf, validate=validate
        )
    except q.DnsQueryError as exc:
        results.append(_unanswered(group, f"{domain.name} SPF", exc))
    for key in domain.dkim:
        name = f"{key.selector}._domainkey.{domain.name}"
        try:
            expected = expected_key_bytes(key.public_key_pem)
            results.append(
                judge_dkim(domain.name, group, key.selector, q.txt(resolver, name), expected)
            )
        except q.DnsQueryError as exc:
            results.append(_unanswered(group, f"{domain.name} DKIM {key.selector}", exc))
    try:
        found = q.txt(resolver, f"_dmarc.{domain.name}")
        validate = partial(records.dmarc_syntax_error, domain=domain.name, resolver=resolver)
        results.append(judge_dmarc(domain.name, group, found, validate))
    except q.DnsQueryError as exc:
        results.append(_unanswered(group, f"{domain.name} DMARC", exc))
    return results


def check_ptr(resolver: dns.resolver.Resolver, host: HostTarget, relay_ip: RelayIp) -> CheckResult:
    group = host_group(host.fqdn)
    try:
        names = q.ptr(resolver, relay_ip.address)
        forward = q.addresses(resolver, relay_ip.helo) if relay_ip.helo in names else []
    except q.DnsQueryError as exc:
        return _unanswered(group, f"{relay_ip.address} PTR", exc)
    return judge_ptr(relay_ip.address, relay_ip.helo, group, names, forward)


def check_mx(resolver: dns.resolver.Resolver, target: CheckTarget) -> CheckResult:
    group = service_group(target.service_domain)
    try:
        exchanges = q.mx(resolver, target.service_domain)
        resolved = {h: q.addresses(resolver, h) for _, h in exchanges if h}
    except q.DnsQueryError as exc:
        return _unanswered(group, f"{target.service_domain} MX", exc)
    return judge_mx(target.service_domain, group, exchanges, resolved, target.expected_mx)


def check_service_records(
    resolver: dns.resolver.Resolver, target: CheckTarget
) -> list[CheckResult]:
    group = f"service {target.service_domain}"
    results: list[CheckResult] = []
    for what, label, version, validate in SERVICE_RECORDS:
        name = f"{label}.{target.service_domain}"
        try:
            found = q.txt(resolver, name)
        except q.DnsQueryError as exc:
            results.append(_unanswered(group, f"{name} {what}", exc))
            continue
        results += judge_service_record(what, name, version, group, found, validate)
    return results


def run_dns_checks(
    target: CheckTarget, resolver: dns.resolver.Resolver, *, workers: int = 1
) -> list[CheckResult]:
    domains = (*target.sender_domains, *([target.service_mail] if target.service_mail else []))
    results = gather(lambda d: check_domain(resolver, d), domains, workers=workers)
    pairs = [(host, ip) for host in target.hosts for ip in host.ips]
    results += gather(lambda p: [check_ptr(resolver, *p)], pairs, workers=workers)
    results.append(check_mx(resolver, target))
    results += check_service_records(resolver, target)
    return results
