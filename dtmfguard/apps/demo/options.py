# SPDX-License-Identifier: GPL-2.0-or-later
"""The demo's inputs: which published test card, how each key is sent, and their checks."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

__all__ = ["DTMF_MODES", "TEST_CARDS", "DemoError", "DemoOptions", "key_plan", "summary_fields",
           "RATE", "DIGIT_MS", "TONE_MS", "GAP_MS", "INFO_STEP_S", "TAIL_S", "PROMPTS"]

#: How the customer's phone sends keys: all in-band tones, all RFC 4733 events, all SIP INFO, or
#: "mixed" (card number in-band, expiry as RFC 4733, security code as SIP INFO).
DTMF_MODES = ("mixed", "inband", "rfc4733", "sip-info")

#: Published test card numbers (processors' documentation); anything else is refused.
TEST_CARDS = (
    "4111111111111111", "4242424242424242", "4012888888881881", "4000056655665556",
    "5555555555554444", "5105105105105100", "2223003122003222", "378282246310005", "371449635398431",
    "6011111111111117", "6011000990139424", "3530111333300000", "3566002020360505", "30569309025904",
)

RATE = 8000
DIGIT_MS = 100  # RFC 4733 / SIP INFO key duration the customer sends
TONE_MS, GAP_MS = 90, 110  # in-band key press and pause, like a person on a keypad
INFO_STEP_S = 0.3  # the customer peer waits this long after each SIP INFO
TAIL_S = 1.5  # the customer stays on the line after the last key (gateway answer, hang-up)
PROMPTS = ("hello", "one-moment-please", "auth-thankyou", "goodbye")


class DemoError(Exception):
    """The demo could not run or a check failed; the message is one line, without card data."""


@dataclass
class DemoOptions:
    card: str = "4111111111111111"
    expiry: str = "1230"
    security_code: Optional[str] = None  # default: 123, or 1234 for American Express
    dtmf: str = "mixed"
    out: Path = Path("dtmfguard-demo")
    amount: int = 1999
    currency: str = "GBP"
    timeout_s: float = 90.0
    host: str = "127.0.0.1"
    open_panel: bool = False  # open the agent payment panel in a browser once the call is up

    def check(self) -> "DemoOptions":
        if self.card not in TEST_CARDS:
            raise DemoError("--card must be a published test card number (see `dtmfguard demo --help`); "
                            "the demo never takes a real card")
        if len(self.expiry) != 4 or not self.expiry.isdigit() or not 1 <= int(self.expiry[:2]) <= 12:
            raise DemoError("--expiry must be MMYY, e.g. 1230")
        code_len = 4 if self.card.startswith(("34", "37")) else 3
        if self.security_code is None:
            self.security_code = "1234"[:code_len]
        if len(self.security_code) != code_len or not self.security_code.isdigit():
            raise DemoError(f"--cvv must be {code_len} digits for this card")
        if self.dtmf not in DTMF_MODES:
            raise DemoError(f"--dtmf must be one of {', '.join(DTMF_MODES)}")
        self.out = Path(self.out)
        return self


def key_plan(card: str, expiry: str, code: str, mode: str) -> Dict[str, str]:
    """Which keys go which way: ``{"inband": ..., "rfc4733": ..., "sip_info": ...}``.

    The card number ends with ``#`` (a Visa of 16 digits could still grow to 19); expiry and security
    code end by their length.
    """
    keys = (card + "#", expiry, code)
    if mode == "mixed":
        return {"inband": keys[0], "rfc4733": keys[1], "sip_info": keys[2]}
    path = {"inband": "inband", "rfc4733": "rfc4733", "sip-info": "sip_info"}[mode]
    plan = {"inband": "", "rfc4733": "", "sip_info": ""}
    plan[path] = "".join(keys)
    return plan



def summary_fields() -> List[str]:
    return [f.name for f in dataclasses.fields(DemoOptions)]
