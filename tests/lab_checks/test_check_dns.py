"""DNS and blocklist failures on the lab: each test changes one record, and `relayops
check` (its engine, through the lab's NSD) reports exactly that one failure."""

from __future__ import annotations

import hashlib

import pytest

from lab_checks.changes import ip_listed, replaced, without, zone_changed
from lab_checks.checking import ROOT, LabChecks, errors, failing, only_error
from relayops.compile.dkim import public_key_der
from relayops.lab.dns import Record

pytestmark = pytest.mark.lab

DNS = ("dns",)


def fingerprint(domain: str, selector: str) -> str:
    der = public_key_der(ROOT, domain, selector)
    assert der is not None
    return "sha256:" + hashlib.sha256(der).hexdigest()[:16]


def test_dkim_record_removed(checks: LabChecks) -> None:
    subject = "acme.example DKIM rly2026"
    with zone_changed(
        checks.lab, "acme.example", without("rly2026._domainkey.acme.example.", "TXT")
    ):
        results = checks.run_until(DNS, failing(subject))
    failed = only_error(results)
    assert (failed.check, failed.group, failed.subject) == ("dns", "customer acme", subject)
    assert failed.message == (
        "no DKIM key at rly2026._domainkey.acme.example; publish the TXT record that "
        "`relayops dkim` prints for acme.example at rly2026._domainkey.acme.example."
    )
    checks.assert_healthy(DNS)


def test_dkim_record_of_another_key(checks: LabChecks) -> None:
    """acme.example publishes globex's key: a real key, but not the one the relay signs with."""
    globex = next(
        r
        for r in checks.lab.dns.published()["globex.example"]
        if r.name == "g1._domainkey.globex.example." and r.type == "TXT"
    )
    subject = "acme.example DKIM rly2026"
    name = "rly2026._domainkey.acme.example."
    with zone_changed(checks.lab, "acme.example", replaced(name, "TXT", globex.value)):
        results = checks.run_until(DNS, failing(subject))
    failed = only_error(results)
    assert (failed.check, failed.subject) == ("dns", subject)
    assert failed.message == (
        f"DKIM key at rly2026._domainkey.acme.example ({fingerprint('globex.example', 'g1')}) "
        f"is not the signing key ({fingerprint('acme.example', 'rly2026')}), so signatures "
        "will fail; publish the TXT record that `relayops dkim` prints for acme.example at "
        "rly2026._domainkey.acme.example."
    )
    checks.assert_healthy(DNS)


def test_spf_without_the_relay(checks: LabChecks) -> None:
    """wayne moved to dedicated IP 198.18.0.122 but its SPF still names the shared pool."""
    subject = "wayne.example SPF authorises 198.18.0.122"
    spf = "v=spf1 include:shared-us._spf.relay.example.net -all"
    with zone_changed(checks.lab, "wayne.example", replaced("wayne.example.", "TXT", spf)):
        results = checks.run_until(DNS, failing(subject))
    failed = only_error(results)
    assert (failed.check, failed.group, failed.subject) == ("dns", "customer wayne", subject)
    assert failed.message == (
        "SPF of wayne.example gives fail for relay IP 198.18.0.122; add ip4:198.18.0.122 "
        "(or the relay's include) before the all term."
    )
    checks.assert_healthy(DNS)


def test_spf_with_eleven_lookups(checks: LabChecks) -> None:
    """Eleven lookup terms before the relay's ip4: receivers stop with a permerror at the
    eleventh, so the record is wrong and the relay IP does not pass either."""
    lookups = [f"a:h{i}.wayne.example" for i in range(1, 12)]
    hosts = [Record(f"h{i}.wayne.example.", "A", 300, "198.18.0.3") for i in range(1, 12)]
    spf = f"v=spf1 {' '.join(lookups)} ip4:198.18.0.122 -all"
    edit = replaced("wayne.example.", "TXT", spf, *hosts)
    with zone_changed(checks.lab, "wayne.example", edit):
        results = checks.run_until(DNS, failing("wayne.example SPF"))
    failed = errors(results)
    assert [(r.check, r.subject, r.message) for r in failed] == [
        (
            "dns",
            "wayne.example SPF",
            "SPF record of wayne.example needs 11 DNS lookups, more than the 10 RFC 7208 "
            "4.6.4 allows, so receivers get a permerror; replace includes by ip4:/ip6: "
            "mechanisms.",
        ),
        (
            "dns",
            "wayne.example SPF authorises 198.18.0.122",
            "SPF of wayne.example gives permerror for relay IP 198.18.0.122; add "
            "ip4:198.18.0.122 (or the relay's include) before the all term.",
        ),
    ]
    checks.assert_healthy(DNS)


def test_dmarc_absent(checks: LabChecks) -> None:
    subject = "initech.example DMARC"
    with zone_changed(checks.lab, "initech.example", without("_dmarc.initech.example.", "TXT")):
        results = checks.run_until(DNS, failing(subject))
    failed = only_error(results)
    assert (failed.check, failed.group, failed.subject) == ("dns", "customer initech", subject)
    assert failed.message == (
        "no DMARC record at _dmarc.initech.example; publish TXT `v=DMARC1; p=none; "
        "rua=mailto:dmarc@initech.example` and tighten p= once reports are clean."
    )
    checks.assert_healthy(DNS)


def test_ptr_not_matching_helo(checks: LabChecks) -> None:
    """198.18.0.112 sends with HELO o2.relay.example.net but its PTR names the host."""
    zone = "0.18.198.in-addr.arpa"
    edit = replaced("112.0.18.198.in-addr.arpa.", "PTR", "relay1.relay.example.net.")
    with zone_changed(checks.lab, zone, edit):
        results = checks.run_until(DNS, failing("198.18.0.112 PTR"))
    failed = only_error(results)
    assert (failed.check, failed.group, failed.subject) == (
        "dns",
        "host relay1.relay.example.net",
        "198.18.0.112 PTR",
    )
    assert failed.message == (
        "PTR of 198.18.0.112 is relay1.relay.example.net but the relay says HELO "
        "o2.relay.example.net; set the PTR to o2.relay.example.net (or the transport's HELO "
        "name to the PTR)."
    )
    checks.assert_healthy(DNS)


def test_relay_ip_listed_in_the_lab_dnsbl(checks: LabChecks) -> None:
    only = ("dnsbl",)
    subject = "198.18.0.121 in dnsbl.lab"
    with ip_listed(checks.lab, "198.18.0.121"):
        results = checks.run_until(only, failing(subject))
    failed = only_error(results)
    assert (failed.check, failed.group, failed.subject) == (
        "dnsbl",
        "host relay2.relay.example.net",
        subject,
    )
    assert failed.message == (
        "198.18.0.121 is listed in dnsbl.lab (answer 127.0.0.2) (listed in the relayops lab "
        "DNSBL: 198.18.0.121); stop the source of the spam, then request delisting from the "
        "list's operator."
    )
    checks.assert_healthy(only)
