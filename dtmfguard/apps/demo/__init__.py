# SPDX-License-Identifier: GPL-2.0-or-later
"""``dtmfguard demo``: one complete card payment over SIP on 127.0.0.1, with nothing to set up.

Why a demo that runs the real thing: a telephony engineer judges a media-path
product by listening to the agent's side of a call and looking at its logs,
not by reading claims.  So nothing here is simulated in-process; the demo
starts the same programs a deployment runs, each in its own process (pjsua2 is
a per-process singleton with 4 calls at most, notes/pjsua2.md):

* the **agent**: :mod:`dtmfguard.sip.pj.peers` ``agent``, answers and records what it hears;
* the **guard**: ``dtmfguard serve`` with a generated ``guard.toml`` (the
  ``vault`` gateway, an audit trail and the control API on 127.0.0.1);
* the **customer**: :mod:`dtmfguard.sip.pj.peers` ``customer``, plays real speech
  (Asterisk prompts recorded by Allison Smith, CC-BY-SA-3.0, shipped in
  ``dtmfguard/data``) and keys a published *test* card number, expiry and
  security code in-band, as RFC 4733 events (RFC 4733 §2) or as SIP INFO.

This process plays the agent's desktop: it starts the payment through the
control API once the call is connected and shows the masked feed (Server-Sent
Events; digit counts, brand and last 4 only, PCI SSC telephone payment
guidance 2018) while the call runs.  Afterwards it checks the outcome the way
an assessor would: the adversarial decoder (:mod:`dtmfguard.testkit.adversary`) and a
Q.24 receiver on the agent's recording, the audit trail's hash chain
(PCI DSS v4.0 req. 10.3.2), and it writes a spectrogram with the masked spans
shaded.

Card data: only numbers from :data:`TEST_CARDS` are accepted.  The library
never logs or returns digits; the customer's key plan is handed to the
customer process on its command line, as a test peer's input (that process is
the customer's phone).  Results carry counts, brand, last 4 and the token.

Modules, one concern each: :mod:`.options` (test cards, key plan, checks), :mod:`.customer` (what the
customer's phone plays), :mod:`.processes` (the child processes and the control API client),
:mod:`.run` (the call and the checks), :mod:`.analysis` (reading the agent's recording), :mod:`.plot`
(the spectrogram) and :mod:`.play` (playing the recordings).
"""
from __future__ import annotations

from .analysis import align_lag, find_mask_spans
from .customer import customer_audio, speech_prompts
from .options import DTMF_MODES, TEST_CARDS, DemoError, DemoOptions, key_plan, summary_fields
from .play import play_files, player_command
from .plot import write_spectrogram
from .run import DemoState, run_demo

__all__ = ["DTMF_MODES", "TEST_CARDS", "DemoError", "DemoOptions", "DemoState", "run_demo", "key_plan",
           "customer_audio", "find_mask_spans", "align_lag", "write_spectrogram", "speech_prompts", "play_files",
           "player_command", "summary_fields"]
