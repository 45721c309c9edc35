# SPDX-License-Identifier: GPL-2.0-or-later
"""Wrong card numbers from frames that are not the customer's audio: one fault per run, at every frame position.

A test PAN is typed in-band (``tone_ms`` keys, ``pause_ms`` pauses, -10 dBm0) through a real
:class:`~dtmfguard.media.pipeline.CallPipeline` (real masker and detector) in each mask mode, and one frame
is disturbed the way a loaded host's jitter buffer disturbs it.  Prints, per mode and kind, how many
positions gave a wrong digit string (missing, extra or split keys; digits are never printed, only counts).

Kinds: ``none`` a NONE frame (gap=True) before the real frame (the buffer was empty); ``nonej`` the same,
counted by the buffer as inserted; ``nonerep`` a NONE frame in place of a lost packet; ``ins`` a repeat of
the previous frame counted as inserted; ``inszero`` a silent audio frame counted as inserted; ``conc`` a lost
frame concealed by a -12 dB copy, counted; ``concz`` a lost frame concealed by silence, counted; ``rep`` an
uncounted repeat of the previous frame; ``drop``/``dropq`` a frame dropped, counted / not counted;
``wsola`` the buffer ran empty and concealed a frame as pjmedia's WSOLA does (the tone goes on with another
phase; its first 5 ms merged into the next real frame), counted as inserted; ``wsolalost`` the same in
place of a lost packet, counted as concealed.

    PYTHONPATH=$PWD python benchmarks/frame_faults.py 100 100 none,nonerep,concz
    PYTHONPATH=$PWD python benchmarks/frame_faults.py 70 120 wsola,wsolalost [--without-breaks]

``--without-breaks``: the detector ignores ``mark_break`` (as before it had one), for a before/after.
"""
from __future__ import annotations

import sys

import numpy as np

from dtmfguard.media.pipeline import CallPipeline
from dtmfguard.testkit.synth import dtmf_tone, wsola_like

F = 160
PAN = "4111111111111111"
KINDS = ["none", "nonej", "nonerep", "ins", "inszero", "conc", "concz", "rep", "drop", "dropq", "wsola", "wsolalost"]


def signal(tone_ms: float, pause_ms: float, level: float = -10.0, digits: str = PAN):
    parts = [np.zeros(10 * F)]
    for d in digits:
        parts += [dtmf_tone(d, tone_ms, 8000, level), np.zeros(int(pause_ms * 8))]
    x = np.concatenate(parts + [np.zeros(30 * F)])
    x = np.round(x * 32767 if np.abs(x).max() <= 1.0 else x).astype(np.int16)
    x = np.concatenate([x, np.zeros(-x.size % F, np.int16)])
    return [x[i:i + F] for i in range(0, x.size, F)]


def run(frames, mode: str, faults: dict) -> str:
    got: list[str] = []
    p = CallPipeline(8000, mask_mode=mode, on_digit=lambda ev: got.append(ev.digit), detect_always=True)
    prev = np.zeros(F, np.int16)
    zero = np.zeros(F, np.int16)
    for i, fr in enumerate(frames):
        k = faults.get(i)
        if k == "none":
            p.process_customer_frame(zero, gap=True)
        elif k == "nonej":
            p.note_jitter(1, 0)
            p.process_customer_frame(zero, gap=True)
        elif k == "nonerep":
            p.process_customer_frame(zero, gap=True)
            prev = fr
            continue
        elif k == "ins":
            p.note_jitter(1, 0)
            p.process_customer_frame(prev.copy())
        elif k == "inszero":
            p.note_jitter(1, 0)
            p.process_customer_frame(zero)
        elif k in ("conc", "concz"):
            p.note_jitter(0, 2)  # a lost 20 ms packet: the buffer's two 10 ms frames
            p.process_customer_frame((fr // 4).astype(np.int16) if k == "conc" else zero)
            prev = fr
            continue
        elif k == "rep":
            p.process_customer_frame(prev.copy())
        elif k in ("wsola", "wsolalost"):
            # the concealment is merged into the next frame that arrives: this one, or the next if this was lost
            nxt = i if k == "wsola" else min(i + 1, len(frames) - 1)
            made, merged = wsola_like(prev, frames[nxt])
            p.note_jitter(*((1, 0) if k == "wsola" else (0, 2)))
            p.process_customer_frame(made)
            if k == "wsolalost":  # the sender's frame is the one concealed: it never arrives
                faults = {**faults, nxt: ("merged", merged)}
                prev = fr
                continue
            fr = merged
        elif isinstance(k, tuple):  # the frame after a lost one, with the concealment merged in
            fr = k[1]
        elif k in ("drop", "dropq"):
            if k == "drop":
                p.note_jitter(0, 0, 1)
            continue
        p.process_customer_frame(fr)
        prev = fr
    for _ in range(30):
        p.process_customer_frame(zero)
    p.flush()
    return "".join(got)


def main(argv: list[str]) -> int:
    if "--without-breaks" in argv:
        from dtmfguard.dsp.detector import DetectorBank

        argv = [a for a in argv if a != "--without-breaks"]
        DetectorBank.mark_break = lambda self, ch=0: None
    tone_ms = float(argv[1]) if len(argv) > 1 else 100.0
    pause_ms = float(argv[2]) if len(argv) > 2 else 100.0
    kinds = argv[3].split(",") if len(argv) > 3 else KINDS
    frames = signal(tone_ms, pause_ms)
    positions = range(10, len(frames) - 30)
    print(f"tone {tone_ms:g} ms, pause {pause_ms:g} ms: positions with a wrong card number, of {len(positions)}")
    for mode in ("always", "payment", "secure"):
        if run(frames, mode, {}) != PAN:
            print(f"{mode}: wrong without any fault")
            continue
        for kind in kinds:
            wrong = [i for i in positions if run(frames, mode, {i: kind}) != PAN]
            print(f"{mode:8s} {kind:8s} {len(wrong):4d}/{len(positions)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
