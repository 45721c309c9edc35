# SPDX-License-Identifier: GPL-2.0-or-later
"""Masker: where the samples it changes in key-free audio lie, relative to the evidence of each band notch.

For each source (``tune`` half by default: a tuning tool) it masks the audio with the numpy steps (every hop a
Python step, so every change of a suspect is seen) and splits the changed samples into

* ``flat``: under a flat mask or its fades;
* per band notch, from the hops at which a window named the notch's pair (``named``: a short window, verified or
  not, or a screen window) and the hops at which only the 16 ms window held it (``weak``):
  ``head`` before the first named hop less ``--window-ms`` (the lead and guard before the evidence),
  ``body`` up to the last named hop, ``tail guard`` up to ``guard_ms`` after it, ``tail weak`` past that while the
  16 ms window held the pair (a notch outlasting its last named window), ``tail other`` past that otherwise,
  ``weak only`` a notch no window named (a weak suspect notched at once), ``join`` between two notches joined into
  one (``notch_join_ms``);

each as samples changed per source (share of all samples) and the part inside the runs the blind attacker names in
the unmasked audio (:func:`dtmfguard.testkit.adversary.decode`).  It also prints how long the notches were named
(first to last named hop) and how far their ends lie past their last named hop.

It watches the masker from outside (wrapping ``_step`` and ``_open_notch``), so it changes nothing it does.

Run:  DTMFGUARD_BACKEND=numpy python benchmarks/masker_notch_parts.py [--split tune] [--minutes 4]
      [--sources hyperrogue,espeak-cmn,espeak-de] [--param name=value ...]
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # single-threaded, before numpy
    os.environ.setdefault(_var, "1")
os.environ.setdefault("DTMFGUARD_BACKEND", "numpy")

import argparse  # noqa: E402
import collections  # noqa: E402
import dataclasses  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402

from dtmfguard.dsp import masker as M  # noqa: E402
from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS  # noqa: E402
from dtmfguard.testkit import corpora  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from masker import adversary_runs, param_changes  # noqa: E402

PARTS = ("flat", "head", "body", "tail guard", "tail weak", "tail other", "weak only", "join", "other")


def watch(cls):
    """Wrap ``cls._step``, ``cls._open_notch`` and ``cls._end_suspect``; returns (records per notch span id, joins list)."""
    recs: dict = {}
    joins: list = []
    step, open_notch, end_suspect = cls._step, cls._open_notch, cls._end_suspect

    def wrapped_step(self, e, sus, conf, coef, weak, expl, buf_start):
        sp = self._suspect
        before = (sp, sp[2] if sp is not None else None)
        step(self, e, sus, conf, coef, weak, expl, buf_start)
        now = self._suspect
        if now is None or now[3] is None or now[3].source != "notch":
            return
        rec = recs.get(id(now[3]))
        if rec is None:
            rec = recs[id(now[3])] = {"span": now[3], "named": [], "weak": []}
        elif now is before[0] and now[2] == before[1]:
            return
        s = sus - self._g711_flag if sus >= self._g711_flag else sus
        if now[2] == e and weak == now[0] and not (s >= 0 and s % 16 == now[0]):
            rec["weak"].append(e)
        else:
            rec["named"].append(now[2])

    def wrapped_open(self, start, lim, **kwargs):
        prev = {id(s): s.end for s in self._notches}
        span = open_notch(self, start, lim, **kwargs)
        old_end = prev.get(id(span))
        if old_end is not None:
            joins.append((old_end, start))
        return span

    def wrapped_end(self, end):
        sp = self._suspect
        if sp is not None and sp[3] is not None and sp[3].source == "notch":
            rec = recs.get(id(sp[3]))
            if rec is None:  # (opened and ended by one step: a short window verified ``verify_after_ms`` late)
                recs[id(sp[3])] = {"span": sp[3], "named": [sp[2]], "weak": []}
        end_suspect(self, end)

    cls._step, cls._open_notch, cls._end_suspect = wrapped_step, wrapped_open, wrapped_end
    return recs, joins


def breakdown(name, split, minutes, params, window_ms, recs, joins):
    x = corpora.signal(name, split, max_seconds=minutes * 60).astype(np.int16)
    n = x.size
    mins = n / 8000 / 60
    adv = np.zeros(n, dtype=bool)
    for s, e in adversary_runs(x.astype(np.float64)):
        adv[s:e] = True
    recs.clear()
    joins.clear()
    m = M.Masker(params=params)
    out = np.concatenate([m.process(x[i: i + 160]) for i in range(0, n, 160)] + [m.flush()])[m.delay_samples:]
    changed = out != x
    part = np.full(n, len(PARTS) - 1, dtype=np.int8)  # "other" unless claimed
    claimed = np.zeros(n, dtype=bool)
    g = m._guard
    win = int(round(window_ms * 8))

    def claim(a, b, k):
        a, b = max(a, 0), min(b, n)
        if b > a:
            sel = ~claimed[a:b]
            part[a:b][sel] = k
            claimed[a:b] |= sel

    for sp in m.masked_spans:
        claim(sp.start - m._fade, sp.end + m._fade, 0)
    for a, b in joins:
        claim(a, b, PARTS.index("join"))
    named_len, tail_len = [], []
    for rec in recs.values():
        span = rec["span"]
        s, e = span.start, span.end if span.end is not None else n
        named, weak = sorted(rec["named"]), sorted(rec["weak"])
        if not named:
            claim(s, e, PARTS.index("weak only"))
            continue
        first, last = named[0], named[-1]
        named_len.append((last - first) / 8.0)
        tail_len.append((e - last) / 8.0)
        claim(s, first - win, PARTS.index("head"))
        claim(first - win, last, PARTS.index("body"))
        claim(last, last + g, PARTS.index("tail guard"))
        claim(last + g, e, PARTS.index("tail weak" if weak and weak[-1] > last else "tail other"))
    print(f"{name} ({split} half, {mins:.1f} min): {len(m.masked_spans) / mins:.2f} flat/min, "
          f"{len(m.notched_spans) / mins:.1f} notches/min, {changed.mean():.3%} changed "
          f"({np.mean(changed & adv):.3%} inside the attacker's runs)")
    for k, label in enumerate(PARTS):
        sel = changed & (part == k)
        if sel.any():
            print(f"    {label:11s} {sel.mean():.3%} changed ({np.mean(sel & adv):.3%} inside)")
    if named_len:
        nl, tl = np.array(named_len), np.array(tail_len)
        print(f"    named span ms: median {np.median(nl):.0f}, <= 2 ms {np.mean(nl <= 2):.0%}; end past the last "
              f"named hop ms: median {np.median(tl):.0f}, mean {tl.mean():.1f}, > 4 ms {np.mean(tl > 4):.0%}, "
              f"max {tl.max():.0f}", flush=True)
    hist = collections.Counter(int(t) for t in tail_len)
    print("    end past last named (ms: count) " + " ".join(f"{k}:{hist[k]}" for k in sorted(hist)), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="tune", choices=("tune", "report"))
    ap.add_argument("--sources", default="hyperrogue,espeak-cmn,espeak-de")
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--window-ms", type=float, default=4.0, help="the evidence window before the first named hop")
    ap.add_argument("--param", action="append", default=[], help="MaskerParams override name=value (Python literal)")
    args = ap.parse_args()
    try:
        over = param_changes(args.param, "--param")
    except ValueError as exc:
        ap.error(str(exc))
    params = dataclasses.replace(DEFAULT_MASKER_PARAMS, **over)
    recs, joins = watch(M.Masker)
    for name in args.sources.split(","):
        try:
            breakdown(name, args.split, args.minutes, params, args.window_ms, recs, joins)
        except corpora.CorpusMissing as exc:
            print(f"{name}: skipped ({exc})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
