# SPDX-License-Identifier: GPL-2.0-or-later
"""Running the demo: start guard, agent and customer, drive the payment as the agent desktop would, then
check the agent's recording, the audit trail and the outcome (see :mod:`dtmfguard.apps.demo`)."""
from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from ...capture.states import COMPLETED
from .analysis import find_mask_spans
from .customer import customer_audio
from .options import DIGIT_MS, INFO_STEP_S, RATE, TAIL_S, DemoError, DemoOptions, key_plan
from .plot import write_spectrogram
from .processes import Child, Control, free_port, free_port_pair, rtp_bases

__all__ = ["DemoState", "run_demo"]

log = logging.getLogger(__name__)


@dataclass
class DemoState:
    """What the terminal shows; updated from the feed thread, read by the UI."""

    stage: str = "starting"
    elapsed_s: float = 0.0
    expected_s: float = 1.0
    fields: Dict[str, dict] = field(default_factory=dict)
    order: List[str] = field(default_factory=list)
    gateway: Optional[dict] = None
    outcome: Optional[str] = None
    call_id: Optional[str] = None
    panel_url: Optional[str] = None  # the agent payment panel of this call (single-use ticket inside)


def _guard_toml(opts: DemoOptions, ports: dict, out: Path) -> str:
    def q(p: Path) -> str:
        return json.dumps(str(p))  # a TOML basic string is a JSON string for these paths

    return f"""# Written by `dtmfguard demo` for this run; the guard was started as
#   DTMFGUARD_API_TOKEN=<random> dtmfguard serve --config {out / 'guard.toml'}
# See samples/guard.toml for a commented production example.
[sip]
listen = "{opts.host}:{ports['guard']}"
transports = ["udp"]
rtp_port = {ports['guard_rtp']}
rtp_range = 40

[agent]
uri = "sip:agent@{opts.host}:{ports['agent']}"
answer_timeout_s = 10

[media]
mask = "tone"
mask_mode = "always"

[control]
listen = "{opts.host}:{ports['control']}"
token_env = "DTMFGUARD_API_TOKEN"
endpoint = "box"                 # the box endpoint and its agent payment panel (/panel/)

[payment]
gateway = "vault"
options = {{ path = {q(out / 'vault.sqlite3')}, key_file = {q(out / 'vault.key')} }}
audit = {q(out / 'audit.jsonl')}
"""


def _start_customer(opts: DemoOptions, ports: dict, logs: Path, args: List[str], children: List[Child]) -> Child:
    """The customer's phone, on ``ports["customer"]``; when another program took that port between choosing it and
    the phone binding it (the phone exits before it is ready, its SIP transport not created), on a fresh one, up to
    three times."""
    for attempt in range(3):
        customer = Child("customer", [
            "-m", "dtmfguard.sip.pj.peers", "customer", "--port", str(ports["customer"]),
            "--rtp", str(ports["customer_rtp"]), "--to", f"sip:guard@{opts.host}:{ports['guard']}", *args],
            logs / "customer.log")
        children.append(customer)
        if customer.wait_for(lambda s: '"ready"' in s, 30) or "transportCreate" not in customer.text() \
                or attempt == 2:
            return customer
        customer.stop()
        children.remove(customer)
        ports["customer"] = free_port(opts.host)
        ports["customer_rtp"] = next(b for b in rtp_bases(4) if b not in (ports["guard_rtp"], ports["agent_rtp"]))
    return customer


def run_demo(opts: DemoOptions, on_update: Optional[Callable[[DemoState, Optional[dict]], None]] = None) -> dict:
    """Run the call, then the checks; return the JSON-ready summary.  Raises :class:`DemoError`.

    ``on_update(state, event)`` is called from this thread about ten times a second and for every feed
    event (``event`` is the masked feed event, or None for a timer tick).
    """
    opts.check()
    t_start = time.monotonic()
    out = opts.out.resolve()
    logs = out / "logs"
    try:
        logs.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DemoError(f"cannot create {out} ({exc.strerror})") from None
    state = DemoState()
    lock = threading.Lock()
    pending: List[dict] = []

    def update(event: Optional[dict] = None) -> None:
        state.elapsed_s = time.monotonic() - t_start
        if on_update is not None:
            try:
                on_update(state, event)
            except Exception as exc:  # noqa: BLE001 - a display problem must not stop the call
                log.warning("display callback failed (%s)", type(exc).__name__)

    plan = key_plan(opts.card, opts.expiry, opts.security_code, opts.dtmf)
    audio, key_spans, first_key = customer_audio(plan)
    customer_wav = out / "customer.wav"
    import soundfile as sf

    sf.write(customer_wav, audio, RATE, subtype="PCM_16")
    play_s = audio.size / RATE + 0.3
    signalled_s = (len(plan["rfc4733"]) * (DIGIT_MS + 120) / 1000 + 0.5 if plan["rfc4733"] else 0.0) \
        + len(plan["sip_info"]) * INFO_STEP_S
    state.expected_s = 3.0 + play_s + signalled_s + TAIL_S + 2.0

    from ...capture.gateways.vault import write_key_file

    key_file = out / "vault.key"
    if not key_file.exists():
        write_key_file(key_file)
    ports = {"guard": free_port(opts.host), "agent": free_port(opts.host), "customer": free_port(opts.host),
             "control": free_port_pair(opts.host)}  # the box endpoint, and its worker's API on the next port
    ports["guard_rtp"], ports["agent_rtp"], ports["customer_rtp"] = rtp_bases(3)
    (out / "guard.toml").write_text(_guard_toml(opts, ports, out))
    rec_dir = out / ".agent-recording"
    shutil.rmtree(rec_dir, ignore_errors=True)
    rec_dir.mkdir()
    token = secrets.token_urlsafe(24)
    children: List[Child] = []
    feed_stop = threading.Event()
    result: Dict[str, Any] = {"card": {"test_card": True}, "dtmf": opts.dtmf, "out": str(out)}
    try:
        state.stage = "starting the guard and the agent"
        update()
        guard = Child("guard", ["-m", "dtmfguard", "serve", "--config", str(out / "guard.toml")],
                       logs / "guard.log", env={"DTMFGUARD_API_TOKEN": token})
        children.append(guard)
        agent = Child("agent", ["-m", "dtmfguard.sip.pj.peers", "agent", "--port", str(ports["agent"]),
                                 "--rtp", str(ports["agent_rtp"]), "--record-dir", str(rec_dir),
                                 "--calls", "1", "--timeout", str(opts.timeout_s)], logs / "agent.log")
        children.append(agent)
        for child, ready in ((guard, lambda s: s.startswith("ready ")), (agent, lambda s: '"ready"' in s)):
            if not child.wait_for(ready, 30):
                raise DemoError(f"the {child.name} did not start: {child.last_error()} (see {child.log_path})")
        control = Control(opts.host, ports["control"] + 1, token)  # worker 0's local API
        state.stage = "customer calling"
        update()
        customer = _start_customer(opts, ports, logs, [
            "--play", str(customer_wav), "--play-s", f"{play_s:.2f}", "--rfc2833", plan["rfc4733"],
            "--info", plan["sip_info"], "--digit-ms", str(DIGIT_MS), "--tail-s", str(TAIL_S),
            "--timeout", str(opts.timeout_s)], children)

        def on_feed(kind: str, event: dict) -> None:
            with lock:
                pending.append(dict(event, type=event.get("type", kind)))

        deadline = time.monotonic() + opts.timeout_s
        feed_thread = None
        while customer.alive() and time.monotonic() < deadline:
            if state.call_id is None:
                connected = [c for c in control.calls() if c.get("state") == "connected"]
                if connected:
                    state.call_id = connected[0]["id"]
                    state.panel_url = control.panel_url(ports["control"], state.call_id)
                    if state.panel_url and opts.open_panel:
                        import webbrowser

                        threading.Thread(target=webbrowser.open, args=(state.panel_url,), daemon=True).start()
                    control.start_payment(state.call_id, amount=opts.amount, currency=opts.currency,
                                          reference="DEMO-1", agent_id="demo-agent")
                    state.stage = "call connected: customer speaking, payment started"
                    result["call_setup_s"] = round(time.monotonic() - t_start, 2)
                    result["panel_url"] = state.panel_url
                    feed_thread = threading.Thread(target=control.follow_feed, name="demo-feed", daemon=True,
                                                   args=(state.call_id, on_feed, feed_stop))
                    feed_thread.start()
            with lock:
                events, pending[:] = list(pending), []
            for event in events:
                _apply_feed(state, event)
                update(event)
            update()
            time.sleep(0.1)
        if customer.alive():
            raise DemoError(f"the call did not finish within {opts.timeout_s:.0f} s (see {logs})")
        if state.call_id is None:
            raise DemoError(f"the call never connected: {customer.last_error()} (see {logs})")
        state.stage = "customer hung up; collecting results"
        update()
        if feed_thread is not None:
            feed_thread.join(5)
        with lock:
            events, pending[:] = list(pending), []
        for event in events:
            _apply_feed(state, event)
            update(event)
        agent.proc.wait(15) if agent.alive() else None
    except subprocess.TimeoutExpired:
        pass
    finally:
        feed_stop.set()
        codes = {c.name: c.stop() for c in reversed(children)}
    result["exit_codes"] = codes
    for name, code in codes.items():
        if code not in (0, None) and not (name == "guard" and code == -signal.SIGTERM):
            log.warning("%s process exited with %s", name, code)
    return _finish(opts, out, state, result, audio, key_spans, rec_dir, t_start, update)


def _apply_feed(state: DemoState, event: dict) -> None:
    kind = event.get("type")
    name = event.get("field")
    if name and name not in state.fields:
        state.fields[name] = {"label": event.get("label", name), "digits": 0, "status": "waiting"}
        state.order.append(name)
    f = state.fields.get(name) if name else None
    if kind == "field_started" and f is not None:
        f.update(status="keying", digits=0, label=event.get("label", f["label"]))
        state.stage = f"waiting for the {f['label']}"
    elif kind == "field_progress" and f is not None:
        f["digits"] = int(event.get("digits", 0))
        state.stage = f"customer keying the {f['label']}"
    elif kind == "field_cleared" and f is not None:
        f["digits"] = 0
    elif kind == "field_complete" and f is not None:
        f["status"] = "valid" if event.get("valid") else "invalid"
        if event.get("brand"):
            f["brand"], f["last4"] = event["brand"], event.get("last4")
    elif kind == "submitting":
        state.stage = f"sending to the {event.get('gateway', 'gateway')} gateway"
    elif kind == "gateway_result":
        state.gateway = {k: event.get(k) for k in ("status", "token", "authorisation", "message")}
        state.stage = f"gateway answered: {event.get('status')}"
    elif kind == "session_ended":
        state.outcome = event.get("outcome")
    elif kind == "call_ended":
        state.stage = "call ended"


def _finish(opts: DemoOptions, out: Path, state: DemoState, result: dict, audio: np.ndarray, key_spans,
            rec_dir: Path, t_start: float, update) -> dict:
    import soundfile as sf

    from ...testkit.adversary import count_recovered, recover_digits
    from ...testkit.audio_match import speech_match
    from ...capture.audit import verify_file
    from ...dsp.detector import detect

    recorded = rec_dir / "call-0.wav"
    if not recorded.exists():
        raise DemoError(f"the agent made no recording (see {out / 'logs' / 'agent.log'})")
    agent_wav = out / "agent.wav"
    os.replace(recorded, agent_wav)
    shutil.rmtree(rec_dir, ignore_errors=True)
    agent_audio, rate = sf.read(agent_wav, dtype="int16")
    if agent_audio.ndim > 1:
        agent_audio = agent_audio[:, 0]
    state.stage = "checking the agent's recording"
    update()
    recovered = recover_digits(agent_audio.astype(np.float64), rate)
    receiver = detect(agent_audio, rate)
    customer_recovered = count_recovered(audio.astype(np.float64), key_spans, RATE) if key_spans else 0
    # align on the first prompt (speech precedes every key in the customer's audio); how alike it is there
    # shows the agent hears the customer (masking must not cost the conversation): each 200 ms piece at its
    # own alignment, as a jitter buffer's inserted or dropped frame shifts what follows it (speech_match)
    ref = audio[: int(0.78 * RATE)].astype(np.float64)
    speech_corr, lag = speech_match(agent_audio, ref)
    mask_spans = find_mask_spans(agent_audio, rate)
    png = out / "spectrogram.png"
    plotted = write_spectrogram(png, audio, agent_audio, key_spans, mask_spans, lag, rate)
    if not plotted and png.exists():
        png.unlink()
    audit_path = out / "audit.jsonl"
    audit = verify_file(audit_path) if audit_path.exists() else None
    plan = key_plan(opts.card, opts.expiry, opts.security_code, opts.dtmf)
    card_field = state.fields.get("card_number", {})
    result.update({
        "keys": {"inband": len(plan["inband"]), "rfc4733": len(plan["rfc4733"]), "sip_info": len(plan["sip_info"])},
        "card": {"test_card": True, "brand": card_field.get("brand"), "last4": card_field.get("last4")},
        "fields": {name: {k: v for k, v in f.items() if k != "label"} for name, f in state.fields.items()},
        "payment": {"outcome": state.outcome, **(state.gateway or {})},
        "agent": {
            "digits_recoverable": len(recovered),
            "q24_receiver_digits": len(receiver),
            "masked_spans_heard": len(mask_spans),
            "duration_s": round(agent_audio.size / rate, 2),
            "speech_correlation": round(speech_corr, 3),
        },
        "customer": {"inband_presses": len(key_spans), "inband_recoverable": customer_recovered},
        "audit": None if audit is None else {"ok": audit.ok, "records": audit.records, "head": audit.head},
        "files": {"agent_recording": str(agent_wav), "customer_recording": str(out / "customer.wav"),
                  "spectrogram": str(png) if plotted else None, "audit_trail": str(audit_path),
                  "guard_config": str(out / "guard.toml"), "vault": str(out / "vault.sqlite3"),
                  "logs": str(out / "logs")},
        "plot_available": plotted,
        "elapsed_s": round(time.monotonic() - t_start, 1),
    })
    result["ok"] = bool(state.outcome == COMPLETED and not recovered and not receiver
                        and audit is not None and audit.ok)
    (out / "summary.json").write_text(json.dumps(result, indent=2) + "\n")
    state.stage = "done"
    update()
    return result
