"""Command-line parsing of --store, --listen, --milter, --notify-smtp and --metrics."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from relayops.policyd.cli import _host_port, make_store, read_password_file
from relayops.policyd.server import Listen, split_host_port
from relayops.policyd.store import StoreError


@pytest.mark.parametrize(
    ("spec", "shown"),
    [
        ("unix:///run/redis.sock", "unix:///run/redis.sock"),
        ("memcached://x:1", "memcached://x:1"),
        ("x", "x"),
        ("memcached://u:secret@x:1", "x:1"),  # a password is never echoed
    ],
)
def test_make_store_accepts_only_the_schemes_the_stores_understand(spec: str, shown: str) -> None:
    with pytest.raises(click.BadParameter) as info:
        make_store(spec)
    assert info.value.message == (
        "expected sqlite:PATH, redis[s]://[USER@]HOST:PORT/N or "
        f"redis[s]+sentinel://[USER@]S1,S2,S3/MASTER/N; got {shown!r}"
    )


def test_a_redis_user_needs_a_password() -> None:
    with pytest.raises(StoreError) as info:
        make_store("rediss://relayops-policyd@127.0.0.1:6380/0")
    assert str(info.value) == (
        "rediss://relayops-policyd@127.0.0.1:6380/0 names the ACL user relayops-policyd but no "
        "password: give it with --store-password-file"
    )
    store = make_store("rediss://relayops-policyd@127.0.0.1:6380/0", password="pw")
    assert store.description == "rediss://relayops-policyd:***@127.0.0.1:6380/0"


def test_a_password_file_must_be_private(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("first-line\nignored\n")
    secret.chmod(0o640)
    with pytest.raises(click.BadParameter) as info:
        read_password_file(secret)
    assert info.value.message == f"{secret} is mode 0640: others may read it; chmod 600 it"
    secret.chmod(0o600)
    assert read_password_file(secret) == "first-line"
    secret.write_text("\n")
    with pytest.raises(click.BadParameter, match=r"is empty$"):
        read_password_file(secret)
    with pytest.raises(click.BadParameter, match=r"cannot read .*: No such file or directory$"):
        read_password_file(tmp_path / "missing")


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


def test_milter_address_is_checked_like_listen(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from relayops.policyd.cli import policyd

    rules = tmp_path / "policy.json"
    rules.write_text("{}")
    result = CliRunner().invoke(
        policyd, ["--rules", str(rules), "--listen", "127.0.0.1:1", "--milter", "10041"]
    )
    assert result.exit_code == 2
    assert "Invalid value for --milter: expected unix:PATH or HOST:PORT, got '10041'" in (
        result.output
    )
