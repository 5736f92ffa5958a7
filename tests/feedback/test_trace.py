"""The relay's X-Relayops-Trace stamp: made, verified, and never trusted when forged."""

from __future__ import annotations

import pytest

from relayops.feedback.trace import Trace, TraceFieldError, make_trace, parse_trace, verify_trace

KEY = b"service-key-0123456789"
FIELDS = {"customer": "acme", "login": "acme-app", "queue_id": "4XyZab12", "time": 1764547200}


def test_a_stamp_has_the_documented_form() -> None:
    stamp = make_trace(**FIELDS, key=KEY)
    assert stamp.startswith("v=1; c=acme; l=acme-app; q=4XyZab12; t=1764547200; h=")
    assert len(stamp.rsplit("h=", 1)[1]) == 22  # 16 bytes, base64url without padding


def test_a_stamp_verifies_with_its_key() -> None:
    stamp = make_trace(**FIELDS, key=KEY)
    assert verify_trace(stamp, KEY) == Trace("acme", "acme-app", "4XyZab12", 1764547200, True)


def test_a_stamp_is_deterministic() -> None:
    assert make_trace(**FIELDS, key=KEY) == make_trace(**FIELDS, key=KEY)


@pytest.mark.parametrize("key", [b"another-key", None, b""])
def test_without_the_right_key_the_stamp_is_read_but_unverified(key: bytes | None) -> None:
    trace = verify_trace(make_trace(**FIELDS, key=KEY), key)
    assert trace is not None
    assert (trace.customer, trace.verified) == ("acme", False)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("c=acme", "c=evil"),
        ("l=acme-app", "l=other"),
        ("q=4XyZab12", "q=4XyZab13"),
        ("t=1764547200", "t=1764547201"),
    ],
)
def test_a_changed_field_breaks_the_mac(old: str, new: str) -> None:
    forged = make_trace(**FIELDS, key=KEY).replace(old, new)
    trace = verify_trace(forged, KEY)
    assert trace is not None and trace.verified is False


def test_folding_and_spacing_do_not_matter() -> None:
    stamp = make_trace(**FIELDS, key=KEY).replace("; ", ";\r\n\t")
    trace = verify_trace(stamp, KEY)
    assert trace is not None and trace.verified is True


@pytest.mark.parametrize(
    "header",
    [
        "",
        "v=2; c=acme; l=a; q=A1; t=1; h=AAAAAAAAAAAAAAAAAAAAAA",
        "v=1; c=acme; l=a; q=A1; t=1",  # no MAC
        "v=1; c=acme; c=evil; l=a; q=A1; t=1; h=AAAAAAAAAAAAAAAAAAAAAA",  # a field twice
        "v=1; c=Acme Corp; l=a; q=A1; t=1; h=AAAAAAAAAAAAAAAAAAAAAA",  # bad customer id
        "v=1; c=acme; l=a; q=A1; t=1; h=short",
        "v=1; c=acme; l=a; q=A1; t=1; h=AAAAAAAAAAAAAAAAAAAAAA; x=1",  # unknown field
    ],
)
def test_a_malformed_stamp_is_not_a_stamp(header: str) -> None:
    assert parse_trace(header) is None
    assert verify_trace(header, KEY) is None


@pytest.mark.parametrize(
    "fields",
    [
        {**FIELDS, "customer": "acme; c=evil"},
        {**FIELDS, "login": "a b"},
        {**FIELDS, "queue_id": "4X-yz"},
    ],
)
def test_make_trace_refuses_fields_that_could_inject(fields: dict[str, object]) -> None:
    with pytest.raises(TraceFieldError):
        make_trace(**fields, key=KEY)  # type: ignore[arg-type]
