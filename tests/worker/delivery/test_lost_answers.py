"""Which earlier attempts may have landed unanswered (worker/delivery/lost_answers.py): a read timeout in
the attempt log or a send taken over mid-send in the history; answered failures and the steps of an
ordinary retry are not.  The pipeline's use of it: tests/worker/destinations/trademax/test_read_back.py
(a refused resend read back) and tests/worker/delivery/test_sales_orders.py (a sales order read back)."""
from __future__ import annotations

import pytest

from worker.delivery.lost_answers import earlier_attempt_may_have_landed, taken_over


@pytest.mark.parametrize("history, attempts, expected", [
    ([], [], False),
    (None, None, False),
    ([{"from": "retrying", "to": "sending"}], [{"outcome": "transient"}], False),
    ([], [{"outcome": "transient"}, {"outcome": "outcome_unknown"}], True),
    ([{"from": "sending", "to": "sending"}], [], True),
])
def test_which_earlier_attempts_may_have_landed(history, attempts, expected):
    assert earlier_attempt_may_have_landed(history, attempts) is expected


QUEUED_TO_SENDING = {"from": "queued", "to": "sending", "reason": "claimed"}


@pytest.mark.parametrize("history, expected", [
    ([QUEUED_TO_SENDING, {"from": "sending", "to": "retrying"}], False),
    ([QUEUED_TO_SENDING, {"from": "sending", "to": "sending", "reason": "claimed: previous lease expired"}],
     True),
])
def test_a_send_taken_over_is_a_sending_to_sending_step(history, expected):
    assert taken_over(history) is expected
