"""parse_request against the plain reading of SMTPD_POLICY_README, on arbitrary input.

The reference splits the text into lines and each line at its first "=", keeping the
first value of a repeated name: what the lazy `Request` must answer for every name,
whichever way it is read (get, [], in, iteration).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from relayops.policyd.protocol import Request, parse_request


def reference(block: bytes) -> dict[str, str] | None:
    if not block:
        return None
    attrs: dict[str, str] = {}
    for line in block.decode("utf-8", "replace").split("\n"):
        name, sep, value = line.partition("=")
        if not sep:
            return None
        attrs.setdefault(name, value)
    return attrs if attrs.get("request") == "smtpd_access_policy" else None


# Names and values from a small alphabet with the framing bytes in it, so that
# repeated names, "=" in values, empty lines and stray bytes all turn up often.
_piece = st.binary(max_size=6).map(lambda b: b.replace(b"\n", b"")) | st.sampled_from(
    [b"request", b"smtpd_access_policy", b"sender", b"", b"=", b"\xff", b"\xc3", b"size"]
)
_line = st.one_of(
    st.tuples(_piece, _piece).map(lambda nv: nv[0] + b"=" + nv[1]),
    _piece,  # often without "=": malformed
    st.just(b"request=smtpd_access_policy"),
)
_block = st.lists(_line, max_size=8).map(lambda lines: b"\n".join(lines))


def _names(block: bytes) -> set[str]:
    text = block.decode("utf-8", "replace")
    return {line.partition("=")[0] for line in text.split("\n")} | {"request", "x=y", "a\nb", ""}


@settings(max_examples=400)
@given(_block)
def test_parse_request_reads_as_the_reference(block: bytes) -> None:
    expected = reference(block)
    parsed = parse_request(block)
    if expected is None:
        assert parsed is None
        return
    assert parsed is not None
    assert dict(parsed) == expected and len(parsed) == len(expected)
    assert list(parsed) == list(expected)  # the order of the lines
    for name in _names(block):
        assert parsed.get(name) == expected.get(name)
        assert (name in parsed) == (name in expected)


@given(st.binary(max_size=300))
def test_parse_request_never_raises_on_bytes(block: bytes) -> None:
    parsed = parse_request(block)
    assert parsed is None or parsed.get("request") == "smtpd_access_policy"


def test_request_reads_the_first_of_a_repeated_name_and_values_with_equal_signs() -> None:
    request = Request("request=smtpd_access_policy\nsender=a=b@x\nsize=1\nsize=2\nlast=")
    assert request["sender"] == "a=b@x"
    assert request.get("size") == "1" and request["last"] == ""
    assert "missing" not in request and request.get("missing", "-") == "-"
    assert request.get("sender=a") is None  # no name has "=": never a match inside a line
    assert dict(request) == {
        "request": "smtpd_access_policy",
        "sender": "a=b@x",
        "size": "1",
        "last": "",
    }
