"""SPF parsing, lookup counting and authorisation on captured records."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from relayops.checks import spf
from relayops.checks.dns import judge_spf
from relayops.checks.result import Status

RELAY = ("198.18.0.10", "198.18.0.11")
G = "customer acme"


def snap(txt: dict[str, list[str]], **kw: dict[str, list[str]]) -> spf.SpfSnapshot:
    return spf.SpfSnapshot(txt=txt, addresses=kw.get("addresses", {}), mx=kw.get("mx", {}))


def test_parse_terms_modifiers_and_cidrs() -> None:
    record = spf.parse_spf("v=spf1 ip4:198.18.0.0/24 -a:mail.x.test/28 mx//64 ~all redirect=y.test")
    assert [(t.qualifier, t.mechanism) for t in record.terms] == [
        ("+", "ip4"),
        ("-", "a"),
        ("+", "mx"),
        ("~", "all"),
    ]
    assert record.terms[1].domain == "mail.x.test" and record.terms[1].cidr4 == 28
    assert record.terms[2].cidr6 == 64
    assert record.redirect == "y.test"
    assert record.errors == ()


def test_parse_reports_syntax_errors() -> None:
    record = spf.parse_spf("v=spf1 ip4:300.1.1.1 foo:bar include: -all")
    assert len(record.errors) == 3
    assert spf.parse_spf("v=spf2 -all").errors == ("does not start with v=spf1",)


def test_spf_records_ignores_other_txt() -> None:
    assert spf.spf_records(["google-site-verification=x", "v=spf1 -all", "v=spf10"]) == [
        "v=spf1 -all"
    ]


def eleven_lookups() -> spf.SpfSnapshot:
    # 1 include at the top + 10 a: mechanisms inside it = 11 lookups.
    inner = "v=spf1 " + " ".join(f"a:h{i}.test" for i in range(10)) + " -all"
    return snap({"acme.test": ["v=spf1 include:_spf.acme.test -all"], "_spf.acme.test": [inner]})


def test_eleven_lookups_fail() -> None:
    count, problems = spf.count_lookups("acme.test", eleven_lookups())
    assert (count, problems) == (11, [])
    results = judge_spf("acme.test", G, eleven_lookups(), ())
    assert results[0].status is Status.ERROR
    assert "needs 11 DNS lookups, more than the 10" in results[0].message


def test_an_ip_after_the_tenth_lookup_term_never_passes() -> None:
    """RFC 7208 4.6.4 limits lookups during evaluation: the 11th term is a permerror
    before the ip4: after it is reached, while an ip4: in front matches first."""
    names = {f"h{i}.test": ["192.0.2.1"] for i in range(11)}
    hosts = " ".join(f"a:h{i}.test" for i in range(11))
    late = snap({"acme.test": [f"v=spf1 {hosts} ip4:198.18.0.10 -all"]}, addresses=names)
    early = snap({"acme.test": [f"v=spf1 ip4:198.18.0.10 {hosts} -all"]}, addresses=names)
    assert spf.evaluate("acme.test", "198.18.0.10", late) == "permerror"
    assert spf.evaluate("acme.test", "198.18.0.10", early) == "pass"
    verdicts = judge_spf("acme.test", G, late, ("198.18.0.10",))
    assert [r.status for r in verdicts] == [Status.ERROR, Status.ERROR]
    assert "gives permerror for relay IP 198.18.0.10" in verdicts[1].message


def test_lookups_are_counted_across_includes_and_redirects() -> None:
    s = snap(
        {
            "a.test": ["v=spf1 include:b.test redirect=c.test"],
            "b.test": ["v=spf1 " + " ".join(f"a:h{i}.test" for i in range(8)) + " ?all"],
            "c.test": ["v=spf1 ip4:198.18.0.10 -all"],
        },
        addresses={f"h{i}.test": ["192.0.2.1"] for i in range(8)},
    )
    # include (1) + 8 a: (9) + redirect (10): the redirect's ip4: is still reached.
    assert spf.evaluate("a.test", "198.18.0.10", s) == "pass"
    deeper = snap(
        {**s.txt, "b.test": ["v=spf1 " + " ".join(f"a:h{i}.test" for i in range(9)) + " ?all"]},
        addresses={f"h{i}.test": ["192.0.2.1"] for i in range(9)},
    )
    assert spf.evaluate("a.test", "198.18.0.10", deeper) == "permerror"


def test_ten_lookups_pass() -> None:
    inner = "v=spf1 " + " ".join(f"a:h{i}.test" for i in range(9)) + " -all"
    s = snap({"acme.test": ["v=spf1 include:_spf.acme.test -all"], "_spf.acme.test": [inner]})
    assert spf.count_lookups("acme.test", s) == (10, [])
    assert judge_spf("acme.test", G, s, ())[0].status is Status.OK


def test_include_loop_is_reported_not_followed_forever() -> None:
    s = snap({"a.test": ["v=spf1 include:b.test -all"], "b.test": ["v=spf1 include:a.test -all"]})
    count, problems = spf.count_lookups("a.test", s)
    assert count == 2
    assert problems == ["include loop: a.test -> b.test -> a.test"]


def test_relay_authorised_through_include() -> None:
    s = snap(
        {
            "acme.test": ["v=spf1 include:spf.relay.test -all"],
            "spf.relay.test": ["v=spf1 ip4:198.18.0.0/28 -all"],
        }
    )
    assert [spf.evaluate("acme.test", ip, s) for ip in RELAY] == ["pass", "pass"]
    assert spf.evaluate("acme.test", "203.0.113.5", s) == "fail"
    assert all(r.status is Status.OK for r in judge_spf("acme.test", G, s, RELAY))


def test_spf_missing_a_relay_ip() -> None:
    s = snap({"acme.test": ["v=spf1 ip4:198.18.0.10 ~all"]})
    results = judge_spf("acme.test", G, s, RELAY)
    assert [r.status for r in results] == [Status.OK, Status.OK, Status.ERROR]
    assert results[2].message == (
        "SPF of acme.test gives softfail for relay IP 198.18.0.11; add ip4:198.18.0.11 "
        "(or the relay's include) before the all term."
    )


def test_a_and_mx_mechanisms_use_captured_addresses() -> None:
    s = snap(
        {"acme.test": ["v=spf1 a mx -all"]},
        addresses={"acme.test": ["192.0.2.1"], "mx.acme.test": ["198.18.0.11"]},
        mx={"acme.test": ["mx.acme.test"]},
    )
    assert spf.evaluate("acme.test", "198.18.0.11", s) == "pass"
    assert spf.evaluate("acme.test", "198.18.0.10", s) == "fail"


def test_ptr_before_match_is_unknown_and_redirect_is_followed() -> None:
    assert spf.evaluate("a.test", "198.18.0.10", snap({"a.test": ["v=spf1 ptr -all"]})) == (
        "unknown"
    )
    s = snap({"a.test": ["v=spf1 redirect=b.test"], "b.test": ["v=spf1 ip4:198.18.0.10 -all"]})
    assert spf.evaluate("a.test", "198.18.0.10", s) == "pass"
    assert spf.count_lookups("a.test", s) == (1, [])


def test_absent_and_duplicate_records() -> None:
    absent = judge_spf("acme.test", G, snap({"acme.test": []}), RELAY)
    assert absent[0].status is Status.ERROR
    assert "v=spf1 ip4:198.18.0.10 ip4:198.18.0.11 -all" in absent[0].message
    pool = "v=spf1 include:shared-eu._spf.relay.test -all"
    advised = judge_spf("acme.test", G, snap({"acme.test": []}), RELAY, advice=pool)
    assert f"publish TXT `{pool}`" in advised[0].message
    dup = judge_spf("acme.test", G, snap({"acme.test": ["v=spf1 -all", "v=spf1 +all"]}), RELAY)
    assert "2 SPF records" in dup[0].message


def test_plus_all_is_a_warning() -> None:
    results = judge_spf("acme.test", G, snap({"acme.test": ["v=spf1 +all"]}), ("198.18.0.10",))
    assert results[0].status is Status.WARNING


def test_more_than_two_void_lookups_fail() -> None:
    s = snap(
        {"acme.test": ["v=spf1 a:gone1.test a:gone2.test mx:gone3.test ip4:198.18.0.10 -all"]},
        addresses={"gone1.test": [], "gone2.test": []},
        mx={"gone3.test": []},
    )
    assert spf.void_lookups("acme.test", s) == ["a:gone1.test", "a:gone2.test", "mx:gone3.test"]
    result = judge_spf("acme.test", G, s, ("198.18.0.10",))[0]
    assert result.status is Status.ERROR
    assert "more than the 2 void lookups" in result.message
    two = snap({"acme.test": ["v=spf1 a:x.test a:y.test -all"]}, addresses={"x.test": []})
    assert spf.void_lookups("acme.test", two) == ["a:x.test"]


TOKENS = [
    "ip4:198.18.0.0/24", "ip4:300.1.1.1", "ip6:2001:db8::/32", "ip6:zz", "include:a.test",
    "include:b.test", "include:", "a", "a:c.test/24", "a/33", "mx", "mx//64", "-all", "~all",
    "?all", "+all", "ptr", "exists:%{i}.x.test", "redirect=b.test", "redirect=a.test", "foo",
    "exp=x.test", "-ip4:198.18.0.10",
]  # fmt: skip


@given(st.lists(st.sampled_from(TOKENS), max_size=12), st.lists(st.sampled_from(TOKENS)))
def test_any_record_is_judged_without_raising_or_looping(a: list[str], b: list[str]) -> None:
    """Includes and redirects between a.test and b.test may loop; syntax may be wrong."""
    s = snap(
        {"a.test": ["v=spf1 " + " ".join(a)], "b.test": ["v=spf1 " + " ".join(b)]},
        addresses={"c.test": [], "a.test": ["198.18.0.10"]},
        mx={"a.test": []},
    )
    spf.count_lookups("a.test", s)
    spf.void_lookups("a.test", s)
    assert spf.evaluate("a.test", "198.18.0.10", s) in {
        "pass", "fail", "softfail", "neutral", "none", "permerror", "unknown"
    }  # fmt: skip
    assert judge_spf("a.test", G, s, ("198.18.0.10",))


def test_exactly_two_void_lookups_pass_and_three_fail() -> None:
    """RFC 7208 4.6.4 allows two void lookups: the limit's both sides, exact results."""
    two = snap(
        {"acme.test": ["v=spf1 a:gone1.test mx:gone2.test ip4:198.18.0.10 -all"]},
        addresses={"gone1.test": []},
        mx={"gone2.test": []},
    )
    assert spf.void_lookups("acme.test", two) == ["a:gone1.test", "mx:gone2.test"]
    assert [(r.status, r.message) for r in judge_spf("acme.test", G, two, ())] == [
        (Status.OK, "SPF record of acme.test is valid (2 lookups).")
    ]
    three = snap(
        {"acme.test": ["v=spf1 a:gone1.test mx:gone2.test a:gone3.test ip4:198.18.0.10 -all"]},
        addresses={"gone1.test": [], "gone3.test": []},
        mx={"gone2.test": []},
    )
    assert [(r.status, r.message) for r in judge_spf("acme.test", G, three, ())] == [
        (
            Status.ERROR,
            "SPF record of acme.test has 3 terms naming nothing (a:gone1.test, mx:gone2.test, "
            "a:gone3.test), more than the 2 void lookups RFC 7208 4.6.4 allows; remove them.",
        )
    ]
