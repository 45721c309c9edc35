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

``--leaks`` (issue 12: what the agent hears when a frame inside or around a key is made up): 4 card keys
(70 ms, 120 ms pauses, -10 dBm0, through µ-law both ways) at 13 block/hop-grid offsets, one fault per run at
every frame from two before the first key to two after the last; the agent's audio goes to the blind
adversary (:func:`dtmfguard.testkit.adversary.decode`).  Prints per kind: presses named blind (one answer per
press), runs with any detection naming a key, raw tone ms (key samples emitted untouched) and gaps under
30 ms between two masks.  ``wsola2`` is two made-up frames in a row.  Run it once per tree for a before/after:

    PYTHONPATH=$PWD python benchmarks/frame_faults.py --leaks [kinds] [offsets]
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


LEAK_KINDS = ["wsola", "wsolalost", "wsola2", "ins", "inszero", "conc", "concz", "rep", "drop", "dropq", "none",
              "nonerep"]


def leak_signal(offset: int, keys: str = "1593", seed: int = 0):
    """The keys as µ-law-decoded frames, with per-sample labels (key index, -1: none) and the digits."""
    from dtmfguard.dsp import g711
    from dtmfguard.testkit.synth import keypresses

    x, spans = keypresses(keys, tone_ms=70, gap_ms=120, lead_ms=200, tail_ms=400, level_dbm0=-10,
                          rng=np.random.default_rng(seed))
    x = np.concatenate([np.zeros(offset), x])
    lab = np.full(x.size, -1)
    for i, sp in enumerate(spans):
        lab[sp.start + offset: sp.end + offset] = i
    x = g711.ulaw_decode(g711.ulaw_encode(np.clip(np.round(x), -32768, 32767).astype(np.int16))).astype(np.int16)
    pad = -x.size % F
    x, lab = np.concatenate([x, np.zeros(pad, np.int16)]), np.concatenate([lab, np.full(pad, -1)])
    return ([x[i:i + F] for i in range(0, x.size, F)], [lab[i:i + F] for i in range(0, x.size, F)],
            [sp.digit for sp in spans])


def leak_run(frames, labs, kind: str, at: int):
    """One call with fault ``kind`` at frame ``at``: (stream as fed, its labels, agent audio, masker)."""
    p = CallPipeline(8000, mask_mode="always")
    fed, flab, outs = [], [], []
    none = np.full(F, -1)

    def feed(fr, lb, gap=False):
        fed.append(np.asarray(fr, np.int16))
        flab.append(lb)
        outs.append(p.process_customer_frame(np.asarray(fr, np.int16), gap=gap))

    prev, prevl, pending, i = np.zeros(F, np.int16), none, None, 0
    while i < len(frames):
        fr, lb = frames[i], labs[i]
        if pending is not None:  # the frame after a lost one, with the concealment merged in
            fr, lb, pending = pending[0], np.where(pending[1] >= 0, pending[1], lb), None
        if i == at:
            if kind in ("wsola", "wsolalost", "wsola2"):
                nxt = min(i + 1, len(frames) - 1) if kind == "wsolalost" else i
                made, merged = wsola_like(prev, frames[nxt])
                cont = np.full(F, prevl[-1])  # a key's tone goes on in the concealment
                p.note_jitter(*((0, 2) if kind == "wsolalost" else (1, 0)))
                feed(made, cont)
                if kind == "wsola2":
                    made, merged = wsola_like(made, frames[nxt])
                    p.note_jitter(1, 0)
                    feed(made, cont)
                ml = labs[nxt].copy()
                ml[:40] = np.where(ml[:40] >= 0, ml[:40], prevl[-1])
                if kind == "wsolalost":
                    pending, prev, prevl, i = (merged, ml), fr, lb, i + 1
                    continue
                fr, lb = merged, ml
            elif kind in ("ins", "inszero"):
                p.note_jitter(1, 0)
                feed(prev.copy() if kind == "ins" else np.zeros(F, np.int16), prevl if kind == "ins" else none)
            elif kind in ("conc", "concz"):
                p.note_jitter(0, 2)
                feed((fr // 4).astype(np.int16) if kind == "conc" else np.zeros(F, np.int16),
                     lb if kind == "conc" else none)
                prev, prevl, i = fr, lb, i + 1
                continue
            elif kind in ("none", "nonerep"):  # a NONE frame (no packet): before this one, or in its place
                feed(np.zeros(F, np.int16), none, gap=True)
                if kind == "nonerep":
                    prev, prevl, i = fr, lb, i + 1
                    continue
            elif kind == "rep":
                feed(prev.copy(), prevl)
            elif kind in ("drop", "dropq"):
                if kind == "drop":
                    p.note_jitter(0, 0, 1)
                prev, prevl, i = fr, lb, i + 1
                continue
        feed(fr, lb)
        prev, prevl, i = fr, lb, i + 1
    for _ in range(5):
        feed(np.zeros(F, np.int16), none)
    return np.concatenate(fed), np.concatenate(flab), np.concatenate(outs), p.masker


def leak_measure(x, lab, y, masker, digits):
    """(presses named blind, presses with any detection naming them, raw tone samples, gaps < 30 ms)."""
    from dtmfguard.dsp import g711
    from dtmfguard.testkit.adversary import decode, score

    d = masker.delay_samples
    heard = g711.ulaw_decode(g711.ulaw_encode(y)).astype(np.float64)
    spans = []
    for k, digit in enumerate(digits):
        idx = np.flatnonzero(lab == k)
        if idx.size:
            spans.append((digit, int(idx[0]), int(idx[-1]) + 1))
    dets = decode(heard, 8000)
    blind = score(dets, spans, 8000, offset=d)
    named = sum(1 for dg, s, e in spans if any(t.digit == dg and t.start < e + d and t.end > s + d for t in dets))
    n = min(x.size, y.size - d)
    raw = int(((lab[:n] >= 0) & (y[d:d + n] == x[:n]) & (x[:n] != 0)).sum())
    masked = sorted((s.start, s.end) for s in masker.masked_spans)
    gaps = sum(1 for a, b in zip(masked, masked[1:]) if 0 < b[0] - a[1] < 30 * 8)
    return blind, named, raw, gaps


def leaks(kinds, offsets) -> None:
    print("kind       runs  blind  named  raw-tone runs  raw ms  gaps<30ms   (blind: presses the adversary names)")
    for kind in kinds:
        tot = np.zeros(6, dtype=np.int64)
        for off in offsets:
            frames, labs, digits = leak_signal(off)
            tone = [i for i, lb in enumerate(labs) if (lb >= 0).any()]
            for at in range(max(0, tone[0] - 2), tone[-1] + 3):
                b, nm, raw, gaps = leak_measure(*leak_run(frames, labs, kind, at), digits)
                tot += (1, b, nm, raw > 0, raw, gaps)
        print(f"{kind:10s} {tot[0]:4d}  {tot[1]:5d}  {tot[2]:5d}  {tot[3]:13d}  {tot[4] / 8:6.1f}  {tot[5]:9d}",
              flush=True)


def main(argv: list[str]) -> int:
    if "--leaks" in argv:
        rest = [a for a in argv[1:] if a != "--leaks"]
        kinds = rest[0].split(",") if rest else LEAK_KINDS
        offsets = [int(v) for v in rest[1].split(",")] if len(rest) > 1 else list(range(0, 160, 13))
        leaks(kinds, offsets)
        return 0
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
