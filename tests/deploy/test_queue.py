"""`postqueue -j` as captured on a lab relay (one message of stark's, deferred then held)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relayops.deploy.queue import Queued, QueueError, parse_queue, queued_per_customer

DATA = Path(__file__).parent / "data"
STARK = Queued("3510B17C011", "hold", "billing@stark.example")


def lines(name: str) -> list[str]:
    return (DATA / name).read_text().splitlines()


def test_captured_held_and_deferred_messages() -> None:
    assert parse_queue(lines("postqueue-j-hold.txt")) == [STARK]
    assert parse_queue(lines("postqueue-j-deferred.txt")) == [
        Queued("3510B17C011", "deferred", "billing@stark.example")
    ]


def test_empty_queue_is_the_status_line_alone() -> None:
    assert parse_queue(["relayops-rc=0"]) == []


@pytest.mark.parametrize(
    ("output", "error"),
    [
        ([], "postqueue -j exited with status unknown"),
        (["relayops-rc=69"], "postqueue -j exited with status 69"),
        (['{"queue_id": "A"}', "relayops-rc=0"],
         "not a postqueue -j message: '{\"queue_id\": \"A\"}'"),
        (["postqueue: fatal: bad", "relayops-rc=0"],
         "not a postqueue -j message: 'postqueue: fatal: bad'"),
        (["relayops-rc=0", '{"queue_id": "A", "queue_name": "hold", "sender": ""}'],
         "output after the exit status line"),
    ],
)  # fmt: skip
def test_unreadable_queue_is_an_error(output: list[str], error: str) -> None:
    with pytest.raises(QueueError) as caught:
        parse_queue(output)
    assert str(caught.value) == error


def test_counts_per_customer_by_sender_domain() -> None:
    messages = [
        STARK,
        Queued("B", "active", "x@Stark-Shipping.example"),
        Queued("C", "deferred", "a@acme.example"),
        Queued("D", "deferred", ""),
        Queued("E", "deferred", "x@sub.stark.example"),
    ]
    customers = {"stark": ["stark.example", "stark-shipping.example"], "hooli": ["hooli.example"]}
    assert queued_per_customer(messages, customers) == {"stark": 2, "hooli": 0}


@given(st.lists(st.text(max_size=200), max_size=5))
def test_any_output_parses_or_is_a_queue_error(output: list[str]) -> None:
    with contextlib.suppress(QueueError):
        parse_queue(output)
