"""Record syntax through checkdmarc (relayops.checks.records), exact messages, and the
service domain's optional MTA-STS and TLS-RPT records as `relayops check` judges them."""

from __future__ import annotations

from relayops.checks.dns import SERVICE_RECORDS, judge_service_record, judge_spf
from relayops.checks.records import (
    mta_sts_syntax_error,
    spf_syntax_error,
    tlsrpt_syntax_error,
)
from relayops.checks.resolver import make_resolver
from relayops.checks.result import Status
from relayops.checks.spf import SpfSnapshot

OFFLINE = make_resolver("127.0.0.1:9", timeout=0.2)  # nothing answers: no lookup succeeds
S = "service relay.test"


def test_spf_syntax_errors_are_checkdmarcs() -> None:
    assert spf_syntax_error("v=spf1 ip4:198.18.0.10 -all", "acme.test", OFFLINE) is None
    assert spf_syntax_error("v=spf1 ip4:300.1.1.1 -all", "acme.test", OFFLINE) == (
        "300.1.1.1 is not a valid IPv4 value."
    )
    assert spf_syntax_error("v=spf1 foo:bar -all", "acme.test", OFFLINE) == (
        "foo is not a valid SPF mechanism or modifier"
    )


def test_judge_spf_reports_the_validators_message() -> None:
    record = "v=spf1 foo:bar -all"
    snap = SpfSnapshot(txt={"acme.test": [record]})

    def validate(text: str) -> str | None:
        return spf_syntax_error(text, "acme.test", OFFLINE)

    results = judge_spf("acme.test", "customer acme", snap, ("198.18.0.10",), validate=validate)
    assert [(r.status, r.message) for r in results] == [
        (
            Status.ERROR,
            "SPF record of acme.test is invalid (foo is not a valid SPF mechanism or modifier); "
            "fix the record's syntax.",
        )
    ]


def test_mta_sts_and_tlsrpt_syntax() -> None:
    assert mta_sts_syntax_error("v=STSv1; id=20260101T000000") is None
    assert mta_sts_syntax_error("v=STSv1") == (
        "Error: Expected version_tag at position 0 (marked with ➞) in: ➞v=STSv1"
    )
    assert tlsrpt_syntax_error("v=TLSRPTv1; rua=mailto:tls@relay.test") is None
    assert tlsrpt_syntax_error("v=TLSRPTv1; rua=ftp://x") == (
        "ftp://x is not a valid SMTP TLS Reporting URI."
    )


def _judge(kind: str, found: list[str]) -> list[tuple[Status, str, str]]:
    what, label, version, validate = next(r for r in SERVICE_RECORDS if r[0] == kind)
    name = f"{label}.relay.test"
    results = judge_service_record(what, name, version, S, found, validate)
    return [(r.status, r.subject, r.message) for r in results]


def test_service_records_are_optional_but_must_be_valid() -> None:
    assert _judge("MTA-STS", []) == []
    assert _judge("MTA-STS", ["v=spf1 -all"]) == []
    assert _judge("MTA-STS", ["v=STSv1; id=1"]) == [
        (
            Status.OK,
            "_mta-sts.relay.test MTA-STS",
            "MTA-STS record at _mta-sts.relay.test is valid.",
        )
    ]
    assert _judge("TLS-RPT", ["v=TLSRPTv1; rua=ftp://x"]) == [
        (
            Status.ERROR,
            "_smtp._tls.relay.test TLS-RPT",
            "TLS-RPT record at _smtp._tls.relay.test is invalid (ftp://x is not a valid SMTP "
            "TLS Reporting URI.); fix it.",
        )
    ]
    assert _judge("TLS-RPT", ["v=TLSRPTv1; rua=mailto:a@relay.test"] * 2) == [
        (
            Status.ERROR,
            "_smtp._tls.relay.test TLS-RPT",
            "2 TLS-RPT records at _smtp._tls.relay.test, so senders ignore all; keep one.",
        )
    ]
