"""Command-line parsing of --store, --listen, --notify-smtp and --metrics."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from relayops.policyd.cli import _host_port, make_store
from relayops.policyd.server import Listen, split_host_port

FORMS = (
    "expected sqlite:PATH, redis://HOST[:PORT][/N], rediss://HOST[:PORT][/N] or "
    "redis+sentinel://HOST[:PORT][,HOST[:PORT]...]/SERVICE[/N]; got "
)


@pytest.mark.parametrize("spec", ["unix:///run/redis.sock", "memcached://x:1", "x"])
def test_make_store_accepts_only_the_store_url_grammar(spec: str) -> None:
    with pytest.raises(click.BadParameter) as info:
        make_store(spec)
    assert info.value.message == f"{FORMS}{spec!r}"


def test_make_store_refuses_a_malformed_redis_url_as_validate_does() -> None:
    with pytest.raises(click.BadParameter) as info:
        make_store("redis://127.0.0.1:99999/0")
    assert info.value.message == (
        "'redis://127.0.0.1:99999/0': port '99999' is not a number from 1 to 65535"
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("127.0.0.1:10031", ("127.0.0.1", 10031)),
        ("[::1]:25", ("::1", 25)),
        ("localhost:0", ("localhost", 0)),
        ("10031", None),
        (":10031", None),
        ("host:", None),
        ("host:port", None),
        ("host:-1", None),
    ],
)
def test_host_port_is_parsed_the_same_for_every_option(
    spec: str, expected: tuple[str, int] | None
) -> None:
    assert split_host_port(spec) == expected
    if expected is None:
        with pytest.raises(click.BadParameter) as info:
            _host_port(spec, "--metrics")
        assert info.value.message == f"expected HOST:PORT, got {spec!r}"
        with pytest.raises(ValueError, match="expected unix:PATH or HOST:PORT"):
            Listen.parse(spec)
    else:
        assert _host_port(spec, "--metrics") == expected
        assert Listen.parse(spec) == Listen(host=expected[0], port=expected[1])


def test_listen_unix_path() -> None:
    assert Listen.parse("unix:/run/policyd.sock") == Listen(path=Path("/run/policyd.sock"))
