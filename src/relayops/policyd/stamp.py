"""The stamp the relay prepends to every submitted message, answered at DATA.

Postfix applies a policy answer ``PREPEND header: value`` only before the message
content is received — never in smtpd_end_of_data_restrictions (access(5)) — so the
daemon is asked again in smtpd_data_restrictions, once per header, told apart by
the ``policy_context`` attribute Postfix sends (``check_policy_service { inet:…,
policy_context=trace }``; a policy answer carries one action):

    policy_context=trace        PREPEND X-Relayops-Trace: v=1; c=…; l=…; q=…; t=…; h=…
    policy_context=feedback-id  PREPEND Feedback-ID: <login>:<customer>:relayops

The prepended headers are in the queue file before cleanup(8) hands the message to
the milters, so OpenDKIM sees them like any header the client sent and signs after
(tests/compile/test_real_relay.py proves the signature verifies with them).
"""

from __future__ import annotations

from collections.abc import Mapping

from relayops.policyd.trace import HEADER, TraceFieldError, make_trace

FEEDBACK_ID = "Feedback-ID"
SENDER_ID = "relayops"  # Gmail's Feedback-ID last field: the same for all our mail
CONTEXTS = ("trace", "feedback-id")


def stamp_action(
    request: Mapping[str, str], customer: str, *, key: bytes | None, now: int
) -> str | None:
    """The PREPEND answer for this DATA-state request, None when there is none to give."""
    context = request.get("policy_context", "")
    login = request.get("sasl_username", "")
    if context == "feedback-id":
        return f"PREPEND {FEEDBACK_ID}: {login}:{customer}:{SENDER_ID}"
    if context != "trace" or key is None:
        return None
    queue_id = request.get("queue_id", "") or "none"
    try:
        value = make_trace(customer=customer, login=login, queue_id=queue_id, time=now, key=key)
    except TraceFieldError:  # a login the stamp syntax cannot carry: no stamp, logged by caller
        return None
    return f"PREPEND {HEADER}: {value}"
