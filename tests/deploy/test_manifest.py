"""The manifest the deploy leaves on a host: round trip, and nothing unsafe gets through."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relayops.compile.managed import Entry, EntryKind, manifest
from relayops.deploy.manifest import ManifestError, dumps, loads

SAMPLE = manifest(
    [
        Entry("/etc/postfix/main.cf", EntryKind.FILE),
        Entry("/etc/opendkim/keys/stark.example", EntryKind.DIRECTORY, "stark"),
        Entry("/var/vmail/stark", EntryKind.MAILBOX, "stark"),
    ],
    {"stark": ["stark.example"], "acme": ["acme.example"]},
)


def test_dumps_is_deterministic_and_round_trips() -> None:
    text = dumps(SAMPLE).decode()
    assert text == (
        '{"version": 1,\n'
        ' "entries": [\n'
        '  {"path": "/etc/opendkim/keys/stark.example", "kind": "directory", '
        '"customer": "stark"},\n'
        '  {"path": "/etc/postfix/main.cf", "kind": "file", "customer": null},\n'
        '  {"path": "/var/vmail/stark", "kind": "mailbox", "customer": "stark"}\n'
        " ],\n"
        ' "customers": {"stark": ["stark.example"]}}\n'
    )
    assert loads(text) == SAMPLE
    assert loads(dumps(manifest([], {})).decode()) == manifest([], {})


def _with(entry: dict[str, object]) -> str:
    return json.dumps({"version": 1, "entries": [entry], "customers": {}})


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "/var/lib/relayops/managed.json: (top level): Invalid JSON: EOF while parsing a value "
             "at line 1 column 0 (1 problem(s))"),
        ('{"version": 2, "entries": [], "customers": {}}',
         "/var/lib/relayops/managed.json: version: Input should be 1 (1 problem(s))"),
        (_with({"path": "etc/x", "kind": "file"}),
         "/var/lib/relayops/managed.json: entries.0.path: Value error, must be an absolute, "
         "normalised path other than / (1 problem(s))"),
        (_with({"path": "/", "kind": "directory"}),
         "/var/lib/relayops/managed.json: entries.0.path: Value error, must be an absolute, "
         "normalised path other than / (1 problem(s))"),
        (_with({"path": "/var/vmail/../etc", "kind": "mailbox"}),
         "/var/lib/relayops/managed.json: entries.0.path: Value error, must be an absolute, "
         "normalised path other than / (1 problem(s))"),
        (_with({"path": "/etc", "kind": "mailbox"}),
         "/var/lib/relayops/managed.json: entries.0: Value error, a mailbox must be "
         "/var/vmail/<customer>, not /etc (1 problem(s))"),
        (_with({"path": "/var/vmail", "kind": "mailbox"}),
         "/var/lib/relayops/managed.json: entries.0: Value error, a mailbox must be "
         "/var/vmail/<customer>, not /var/vmail (1 problem(s))"),
        (_with({"path": "/var/vmail/a/b", "kind": "mailbox"}),
         "/var/lib/relayops/managed.json: entries.0: Value error, a mailbox must be "
         "/var/vmail/<customer>, not /var/vmail/a/b (1 problem(s))"),
        (_with({"path": "/etc/x", "kind": "tree"}),
         "/var/lib/relayops/managed.json: entries.0.kind: Input should be 'file', 'directory' "
         "or 'mailbox' (1 problem(s))"),
        ('{"version": 1, "entries": [{"path": "/a", "kind": "file"}, '
         '{"path": "/a", "kind": "file"}], "customers": {}}',
         "/var/lib/relayops/managed.json: a path is listed twice"),
        ('{"version": 1, "entries": [], "customers": {"c": ["a b"]}}',
         "/var/lib/relayops/managed.json: customers: Value error, customer c: not an ASCII "
         "domain name: 'a b' (1 problem(s))"),
    ],
)  # fmt: skip
def test_untrustworthy_manifests_are_refused(text: str, error: str) -> None:
    with pytest.raises(ManifestError) as caught:
        loads(text)
    assert str(caught.value) == error


@given(st.text(max_size=300))
def test_any_text_is_a_manifest_or_a_manifest_error(text: str) -> None:
    with contextlib.suppress(ManifestError):
        loads(text)


_entry = st.fixed_dictionaries(
    {
        "path": st.text(alphabet="/.ab", max_size=12).map(lambda p: "/var/vmail" + p),
        "kind": st.sampled_from(["file", "directory", "mailbox"]),
    }
)


@given(st.lists(_entry, max_size=4))
def test_a_loaded_mailbox_is_always_one_login_directory(entries: list[dict[str, str]]) -> None:
    try:
        loaded = loads(json.dumps({"version": 1, "entries": entries, "customers": {}}))
    except ManifestError:
        return
    for entry in loaded.entries:
        assert ".." not in entry.path.split("/")
        if entry.kind is EntryKind.MAILBOX:
            assert entry.path.startswith("/var/vmail/") and entry.path.count("/") == 3
