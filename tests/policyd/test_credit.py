"""Credit bookkeeping (policyd/credit.py): every granted recipient is used or given back,
exactly once, whatever the order of grants, uses and the clock."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from relayops.policyd.credit import CreditKey, Credits

DAY = date(2026, 12, 1)
KEYS: list[CreditKey] = [("acme", DAY, 100, 80), ("globex", DAY, 10, 8), ("acme", DAY, 200, 160)]

step = st.one_of(
    st.tuples(st.just("grant"), st.integers(0, 2), st.integers(0, 15)),
    st.tuples(st.just("take"), st.integers(0, 2), st.just(0)),
    st.tuples(st.just("tick"), st.just(0), st.integers(0, 700)),
    st.tuples(st.just("expire"), st.just(0), st.just(0)),
)


@given(st.lists(step, max_size=200))
def test_every_granted_recipient_is_used_or_returned_once(
    steps: list[tuple[str, int, int]],
) -> None:
    credits = Credits(window=0.5, refusal_window=0.5)
    now = 0.0
    granted = dict.fromkeys(KEYS, 0)
    used = dict.fromkeys(KEYS, 0)
    expires: dict[CreditKey, float] = {}
    settled = []
    for op, k, n in steps:
        key = KEYS[k]
        if op == "grant":
            credits.grant(key, n, 50, now)
            granted[key] += n
            expires[key] = now + 0.5
        elif op == "take":
            got = credits.take(key, now)
            if got is not None:
                assert now < expires[key]  # never from a lapsed run
                used[key] += 1
        elif op == "tick":
            now += n / 1000
        else:
            credits.expire(now)
        settled += credits.take_due()
    settled += credits.drain()
    assert credits.live == 0
    for key in KEYS:
        mine = [s for s in settled if (s.customer, s.day) == key[:2]]
        # Same customer and day under two limits share the store's keys: sum per key pair.
        twins = [k for k in KEYS if k[:2] == key[:2]]
        assert sum(s.size for s in mine) == sum(granted[k] for k in twins)
        returned = sum(s.returned for s in mine)
        assert returned == sum(granted[k] - used[k] for k in twins)
        assert all(0 <= s.returned <= s.size for s in mine)


def test_a_full_day_is_remembered_for_the_refusal_window() -> None:
    credits = Credits(window=0.5, refusal_window=1.0)
    key = KEYS[1]
    assert not credits.full(key, 0.0)
    credits.mark_full(key, 0.0)
    assert credits.full(key, 0.9)
    assert credits.full(("globex", DAY, 10, 5), 0.9)  # any warn_at: the limit decides
    assert not credits.full(("globex", DAY, 20, 16), 0.9)  # a raised quota asks again
    assert not credits.full(key, 1.0)
    assert not credits.full(key, 0.5)  # forgotten once lapsed


def test_a_run_used_up_is_due_at_once() -> None:
    credits = Credits(window=0.5, refusal_window=0.5)
    key = KEYS[0]
    credits.grant(key, 2, 30, 0.0)
    assert credits.take(key, 0.1) == 29
    assert not credits.has_due
    assert credits.take(key, 0.2) == 30
    assert [(s.returned, s.size) for s in credits.take_due()] == [(0, 2)]
    assert credits.take(key, 0.3) is None
