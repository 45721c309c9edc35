# SPDX-License-Identifier: GPL-2.0-or-later
"""The customer's answer when the agent leg fails keeps the agent side's meaning (issue 18): a front door
fails over on 503 only (RFC 3261 §21.5.4), and every worker calls the same agent side, so 503 is the
guard's own capacity answer and nothing else."""
from __future__ import annotations

import pytest

from dtmfguard.sip.bridge import final_code_for_customer


@pytest.mark.parametrize("agent, timed_out, customer", [
    (488, False, 488), (486, False, 486), (603, False, 603), (600, False, 600), (404, False, 404),
    (415, False, 415), (403, False, 403), (606, False, 606),
    (401, False, 403), (407, False, 403),  # credentials for the guard-agent hop: not the customer's to give
    (408, False, 480), (480, False, 480), (487, False, 480), (0, False, 480), (200, True, 480),
    (500, False, 500), (502, False, 500), (503, False, 500), (504, False, 500),
])
def test_agent_answer_keeps_its_meaning(agent, timed_out, customer):
    assert final_code_for_customer(agent, timed_out) == customer
    assert final_code_for_customer(agent, timed_out) != 503
