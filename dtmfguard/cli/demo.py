# SPDX-License-Identifier: GPL-2.0-or-later
"""``dtmfguard demo``: a complete card payment over SIP on this machine, shown as the agent sees it.

A thin layer over :mod:`dtmfguard.apps.demo`: options, the live terminal view
(redrawn in place on a terminal, one line per step otherwise) and the closing
report.  The view shows what an agent's desktop may show (PCI SSC telephone
payment guidance): dots for digits, brand and last 4, the gateway's answer.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

from . import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CliError, number

_BAR = 28


def _symbols(stream) -> dict:
    enc = (getattr(stream, "encoding", None) or "ascii").lower()
    if "utf" in enc:
        return {"dot": "\u2022", "ok": "\u2713", "bad": "\u2717", "full": "\u2588", "empty": "\u2591"}
    return {"dot": "*", "ok": "ok", "bad": "X", "full": "#", "empty": "."}


class View:
    """Renders :class:`~dtmfguard.apps.demo.DemoState`: in place on a TTY, as a log of steps otherwise."""

    def __init__(self, stream=None):
        self.out = stream or sys.stdout
        self.tty = bool(getattr(self.out, "isatty", lambda: False)())
        self.sym = _symbols(self.out)
        self._drawn = 0
        self._last_stage = None
        self._said: set = set()

    def field_line(self, f: dict) -> str:
        s = self.sym
        dots = s["dot"] * int(f.get("digits", 0))
        line = f"  {f['label']:<20} {dots:<19}"
        if f.get("brand"):
            line += f" {_brand(f['brand'])}, last 4: {f.get('last4')}"
        if f.get("status") == "valid":
            line += f"  {s['ok']}"
        elif f.get("status") == "invalid":
            line += f"  {s['bad']} invalid"
        return line

    def gateway_line(self, g: Optional[dict]) -> str:
        if not g:
            return "  gateway              (waiting)"
        text = f"  gateway              vault: {g.get('status')}"
        if g.get("token"):
            text += f", token {g['token']}"
        return text

    def bar(self, state) -> str:
        share = min(1.0, state.elapsed_s / max(state.expected_s, 0.1))
        n = int(round(share * _BAR))
        return (f"  [{self.sym['full'] * n}{self.sym['empty'] * (_BAR - n)}] {state.elapsed_s:5.1f} s  "
                f"{state.stage}")

    def update(self, state, event) -> None:
        if self.tty:
            self._redraw(state)
        else:
            self._log(state, event)

    def _redraw(self, state) -> None:
        lines = ["", "  Agent's screen (masked feed)"
                 + (f"; in a browser: {state.panel_url}" if getattr(state, "panel_url", None) else "")]
        lines += [self.field_line(state.fields[n]) for n in state.order] or ["  (waiting for the payment)"]
        lines += [self.gateway_line(state.gateway), "", self.bar(state)]
        if self._drawn:
            self.out.write(f"\x1b[{self._drawn}F")
        for line in lines:
            self.out.write("\x1b[2K" + line + "\n")
        self._drawn = len(lines)
        self.out.flush()

    def _log(self, state, event) -> None:
        if getattr(state, "panel_url", None) and "panel" not in self._said:
            self._said.add("panel")
            self.out.write(f"[{state.elapsed_s:5.1f} s] agent payment panel (open within a minute, once): "
                           f"{state.panel_url}\n")
        if state.stage != self._last_stage and state.stage not in ("done",):
            self._last_stage = state.stage
            self.out.write(f"[{state.elapsed_s:5.1f} s] {state.stage}\n")
        if event is not None:
            kind = event.get("type")
            name = event.get("field")
            if kind == "field_complete" and name in state.fields:
                self.out.write(f"[{state.elapsed_s:5.1f} s] agent sees:{self.field_line(state.fields[name])}\n")
            elif kind == "gateway_result" and "gateway" not in self._said:
                self._said.add("gateway")
                self.out.write(f"[{state.elapsed_s:5.1f} s] agent sees:{self.gateway_line(state.gateway)}\n")
        self.out.flush()


def _brand(name) -> str:
    names = {"visa": "Visa", "mastercard": "Mastercard", "amex": "American Express", "discover": "Discover",
             "jcb": "JCB", "diners": "Diners Club", "unionpay": "UnionPay", "maestro": "Maestro"}
    return names.get(str(name), str(name))


def _report(r: dict, out) -> None:
    a, files = r["agent"], r["files"]
    pay = r["payment"]
    w = out.write
    w("\n")
    w(f"Payment: {pay.get('outcome')}, the vault gateway answered {pay.get('status')} with token "
      f"{pay.get('token')} ({_brand(r['card'].get('brand'))}, last 4 {r['card'].get('last4')})\n")
    w(f"Keys sent: {r['keys']['inband']} in-band, {r['keys']['rfc4733']} as RFC 4733 events, "
      f"{r['keys']['sip_info']} as SIP INFO\n")
    w(f"Agent's recording: {a['duration_s']} s, {a['masked_spans_heard']} masked key press(es) heard as a flat "
      f"tone, the customer's speech intact (correlation {a['speech_correlation']:.2f})\n")
    if r["customer"]["inband_presses"]:
        w(f"The same decoder on the customer's line names {r['customer']['inband_recoverable']} of "
          f"{r['customer']['inband_presses']} in-band key presses (what the agent would have heard)\n")
    w(f"A Q.24 DTMF receiver on the agent's recording finds {a['q24_receiver_digits']} digit(s)\n")
    audit = r.get("audit")
    if audit:
        w(f"Audit trail: {audit['records']} record(s), hash chain {'intact' if audit['ok'] else 'BROKEN'}\n")
    w("\nFiles:\n")
    w(f"  agent's recording     {files['agent_recording']}\n")
    w(f"  customer's recording  {files['customer_recording']}\n")
    if files["spectrogram"]:
        w(f"  spectrogram           {files['spectrogram']}\n")
    else:
        w("  spectrogram           not drawn: matplotlib is not installed (pip install 'dtmfguard[plot]')\n")
    w(f"  audit trail           {files['audit_trail']}  (check: dtmfguard audit verify {files['audit_trail']})\n")
    w(f"  guard configuration   {files['guard_config']}\n")
    w(f"  token vault           {files['vault']}  (AES-256-GCM; key next to it, for the demo only)\n")
    w(f"  process logs          {files['logs']}\n")
    w(f"\ndigits recoverable by the agent: {a['digits_recoverable']}\n")
    w(f"({'OK' if r['ok'] else 'FAILED'} in {r['elapsed_s']} s)\n")


def run(args) -> int:
    from ..apps.demo import DemoError, DemoOptions, play_files, run_demo

    opts = DemoOptions(card=args.card, expiry=args.expiry, security_code=args.cvv, dtmf=args.dtmf,
                       out=Path(args.out), timeout_s=args.timeout, open_panel=args.open_panel)
    try:
        opts.check()
    except DemoError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    view = None
    if not args.json:
        from ..capture.card import card_brand

        print(f"dtmfguard demo: a card payment over SIP on {opts.host}; output in {opts.out}/")
        print("  customer phone --SIP/RTP--> dtmfguard serve --SIP/RTP--> agent phone (records what it hears)")
        print("                              | masks DTMF, vault gateway, audit trail")
        print(f"  The customer speaks, then keys the test card ({_brand(card_brand(opts.card))} ending "
              f"{opts.card[-4:]}), expiry and security code {_how(opts.dtmf)}.")
        view = View()
    try:
        result = run_demo(opts, view.update if view else None)
    except DemoError as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _report(result, sys.stdout)
    if args.play:
        files = [Path(result["files"]["customer_recording"]), Path(result["files"]["agent_recording"])]
        message = play_files(files)
        print(message, file=sys.stderr if args.json else sys.stdout)
    return EXIT_OK if result["ok"] else EXIT_FAILURE


def _how(mode: str) -> str:
    return {"mixed": "as in-band tones, RFC 4733 events and SIP INFO respectively",
            "inband": "as in-band tones", "rfc4733": "as RFC 4733 events", "sip-info": "as SIP INFO"}[mode]


def register(sub) -> None:
    from ..apps.demo import DTMF_MODES, TEST_CARDS

    p = sub.add_parser(
        "demo", help="run a complete card payment over SIP on this machine (no servers needed)",
        description="Start a customer phone, the guard and an agent phone on 127.0.0.1 (separate "
                    "processes), have the customer speak and key a published test card, show the agent's "
                    "masked screen live, tokenise the card in a local vault, then check the agent's "
                    "recording with an adversarial DTMF decoder. Takes about 15-25 s.",
        epilog="Examples:\n  dtmfguard demo\n  dtmfguard demo --dtmf rfc4733 --out /tmp/demo\n"
               "  dtmfguard demo --card 5555555555554444 --json\n"
               "Test cards accepted: " + ", ".join(TEST_CARDS) + "\n"
               "Exit codes: 0 payment tokenised and nothing recoverable, 1 a check failed or the call could "
               "not run, 2 bad option, 3 internal error.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--card", default="4111111111111111", metavar="PAN", help="test card number (default Visa 4111…)")
    p.add_argument("--expiry", default="1230", metavar="MMYY", help="expiry date keyed (default 1230)")
    p.add_argument("--cvv", default=None, metavar="CODE", help="security code keyed (default 123, Amex 1234)")
    p.add_argument("--dtmf", choices=DTMF_MODES, default="mixed",
                   help="how keys are sent: mixed (default: card number in-band, expiry RFC 4733, code SIP "
                        "INFO), inband, rfc4733 or sip-info")
    p.add_argument("--out", default="dtmfguard-demo", metavar="DIR", help="output folder (default ./dtmfguard-demo)")
    p.add_argument("--play", action="store_true", help="play the customer's and the agent's recordings afterwards")
    p.add_argument("--timeout", type=number(1, 3600), default=90.0, help="give up after this many seconds (default 90)")
    p.add_argument("--json", action="store_true", help="print only a JSON summary (no live view)")
    p.add_argument("--open", dest="open_panel", action="store_true",
                   help="open the agent payment panel in a web browser during the call (its URL is printed anyway)")
    p.set_defaults(func=run)


if __name__ == "__main__":  # pragma: no cover
    from . import main

    sys.exit(main(["demo", *sys.argv[1:]]))
