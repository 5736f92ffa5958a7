"""The Redis store URL: every form, every refusal, and the password never shown."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relayops.policyd.redis_url import Endpoint, RedisUrl


def test_plain_url_with_defaults() -> None:
    url = RedisUrl.parse("redis://10.0.0.5")
    assert url == RedisUrl(endpoints=(Endpoint("10.0.0.5", 6379),))
    assert (url.sentinel, url.tls, url.ssl_context()) == (False, False, None)
    assert url.redacted() == "redis://10.0.0.5:6379/0"


def test_acl_user_password_and_database() -> None:
    url = RedisUrl.parse("redis://relayops-policyd:s%40cret@127.0.0.1:6380/3")
    assert (url.username, url.password, url.db) == ("relayops-policyd", "s@cret", 3)
    assert url.redacted() == "redis://relayops-policyd:***@127.0.0.1:6380/3"
    assert "s@cret" not in repr(url)
    assert RedisUrl.parse("redis://:only-password@h/0").username is None


def test_tls_with_ca_checks_the_server_name() -> None:
    url = RedisUrl.parse("rediss://u@redis.example:6380/0?ca=/etc/relayops/tls/ca.pem")
    assert (url.tls, url.ca) == (True, "/etc/relayops/tls/ca.pem")
    assert url.redacted() == "rediss://u@redis.example:6380/0?ca=/etc/relayops/tls/ca.pem"
    context = RedisUrl.parse("rediss://h").ssl_context()
    assert context is not None and context.check_hostname is True


def test_sentinel_form() -> None:
    url = RedisUrl.parse(
        "redis+sentinel://u:p@s1:26380,s2,[::1]:26381/relayops/2?wait=1&wait_timeout=250"
    )
    assert url.endpoints == (Endpoint("s1", 26380), Endpoint("s2", 26379), Endpoint("::1", 26381))
    assert (url.master, url.db, url.wait, url.wait_ms, url.tls) == ("relayops", 2, 1, 250, False)
    assert url.redacted() == (
        "redis+sentinel://u:***@s1:26380,s2:26379,[::1]:26381/relayops/2?wait=1&wait_timeout=250"
    )
    assert RedisUrl.parse("rediss+sentinel://a,b,c/m").tls is True
    assert RedisUrl.parse("redis+sentinel://a/m").db == 0


def test_with_password_replaces_the_urls() -> None:
    url = RedisUrl.parse("redis://u@h/0").with_password("from-file")
    assert (url.username, url.password) == ("u", "from-file")


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("http://h", "expected one of redis://, rediss://, redis+sentinel://, rediss+sentinel://; "
                     "got 'http://h'"),
        ("memcached://u:pw@h", "expected one of redis://, rediss://, redis+sentinel://, "
                               "rediss+sentinel://; got 'memcached://***@h…'"),
        ("redis://a,b", "redis:// takes one HOST[:PORT]; use redis+sentinel:// for several"),
        ("redis://h/x", "the database must be a number, got 'x'"),
        ("redis://h/1/2", "the database must be a number, got '1/2'"),
        ("redis://h/²", "the database must be a number, got '²'"),
        ("redis://h:0", "bad port in 'h:0': expected 1-65535"),
        ("redis://h:70000", "bad port in 'h:70000': expected 1-65535"),
        ("redis://:6379", "bad host ':6379': expected HOST[:PORT]"),
        ("redis://[::1", "bad address '[::1': expected [IPV6]:PORT"),
        ("redis+sentinel://a,b", "redis+sentinel:// needs the master name: …@S1,S2,S3/MASTER[/DB]"),
        (
            "redis://h?tls=1",
            "unknown option 'tls'; known: ca, wait, wait_timeout, credit, credit_window",
        ),
        ("redis://h?wait=1&wait=2", "option 'wait' given twice"),
        ("redis://h?wait=-1", "option wait='-1': expected a whole number 0-1000000"),
        ("redis://h?wait", "bad options 'wait': expected NAME=VALUE&…"),
    ],
)  # fmt: skip
def test_bad_urls_say_what_is_wrong(spec: str, error: str) -> None:
    with pytest.raises(ValueError) as info:
        RedisUrl.parse(spec)
    assert str(info.value) == error


@given(st.text(max_size=80))
def test_any_text_parses_or_raises_valueerror(text: str) -> None:
    for spec in (text, "redis://" + text, "redis+sentinel://" + text):
        with contextlib.suppress(ValueError):
            RedisUrl.parse(spec)


@given(
    user=st.text(st.characters(codec="ascii", exclude_characters="\x00"), min_size=1, max_size=20),
    password=st.text(min_size=1, max_size=30),
)
def test_a_password_never_shows_in_redacted_or_repr(user: str, password: str) -> None:
    from urllib.parse import quote

    spec = f"redis://{quote(user, safe='')}:{quote(password, safe='')}@h:1/0"
    url = RedisUrl.parse(spec)
    assert (url.username, url.password) == (user, password)
    # Short strings, and words such as "None", occur by chance in the rest of the text.
    bare = RedisUrl.parse(f"redis://{quote(user, safe='')}@h:1/0")
    if len(password) >= 4 and password not in repr(bare):
        assert password not in url.redacted().replace(quote(user, safe=""), "")
        assert password not in repr(url).replace(user, "")
