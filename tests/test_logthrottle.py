# SPDX-License-Identifier: GPL-2.0-or-later
"""logthrottle: a cap on repeated log lines (what a SIP flood makes the edge write)."""
from __future__ import annotations

import logging

import pytest

from dtmfguard import logthrottle


class _Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def _logger(name, caplog, **kw):
    clock = _Clock()
    log = logging.getLogger(f"dtmfguard.test.{name}")
    log.propagate = True
    for f in list(log.filters):
        log.removeFilter(f)
    logthrottle.install(log, clock=clock, **kw)
    caplog.set_level(logging.INFO, logger=log.name)
    return log, clock


def test_a_burst_passes_then_lines_are_counted_not_written(caplog):
    log, clock = _logger("burst", caplog, burst=5, period_s=10.0)
    for i in range(1000):
        log.info("refused %s at the edge: %d %s", "INVITE", 488 if i % 2 else 400, "reason")
    assert len(caplog.records) == 5
    clock.t += 10.0
    log.info("refused %s at the edge: %d %s", "INVITE", 488, "reason")
    assert len(caplog.records) == 6
    assert caplog.records[-1].getMessage() == "refused INVITE at the edge: 488 reason (995 more like this in the " \
                                              "last 10 s not logged)"
    clock.t += 10.0
    log.info("refused %s at the edge: %d %s", "INVITE", 400, "reason")
    assert caplog.records[-1].getMessage() == "refused INVITE at the edge: 400 reason"  # nothing left out since


def test_a_large_count_stays_readable_through_redaction(caplog):
    from dtmfguard.security import redact

    log, clock = _logger("large", caplog, burst=1)
    for _ in range(123_457):
        log.info("INVITE answered %d", 503)
    clock.t += 10.0
    log.info("INVITE answered %d", 503)
    assert redact(caplog.records[-1].getMessage()) == \
        "INVITE answered 503 (123,456 more like this in the last 10 s not logged)"


def test_templates_are_counted_apart_and_one_offs_always_pass(caplog):
    log, clock = _logger("apart", caplog, burst=3)
    for _ in range(10):
        log.info("INVITE answered %d", 503)
        log.info("dropped a malformed ACK at the edge (%s)", "x")
    log.warning("SIP edge checks: unexpected pjsip_rx_data layout; requests pass unchecked")
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs.count("INVITE answered 503") == 3
    assert msgs.count("dropped a malformed ACK at the edge (x)") == 3
    assert msgs[-1].startswith("SIP edge checks")


def test_install_is_idempotent_and_rejects_nonsense():
    log = logging.getLogger("dtmfguard.test.idem")
    a = logthrottle.install(log)
    assert logthrottle.install(log) is a and log.filters.count(a) == 1
    log.removeFilter(a)
    with pytest.raises(ValueError):
        logthrottle.Throttle(burst=0)
    with pytest.raises(ValueError):
        logthrottle.Throttle(period_s=0)


def test_the_sip_edge_loggers_are_throttled():
    pytest.importorskip("pjsua2", reason="pjsua2 (PyPI pjsua2-python) not installed")
    from dtmfguard.sip.pj import edge, endpoint

    for mod in (edge, endpoint):
        assert any(isinstance(f, logthrottle.Throttle) for f in mod.log.filters), mod.__name__
