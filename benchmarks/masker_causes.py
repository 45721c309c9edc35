# SPDX-License-Identifier: GPL-2.0-or-later
"""Masker: what it changes in key-free audio, by cause, and how much of it the blind attacker could name.

For each source (``tune`` half by default: this is a tuning tool), it prints

* the boundary: the runs of windows the blind attacker (:func:`dtmfguard.testkit.adversary.decode`) names in the
  unmasked audio (per minute, share of samples), the least a masker that treats whatever the attacker can name
  must treat there;
* what the masker changes: flat masks and band notches per minute, share of samples changed, the part of it
  inside the attacker's runs and outside them;
* by cause (the rule that opened each flat mask or notch), per minute, samples changed (inside the
  attacker's runs), durations;
* the runs the attacker still names in the output after a G.711 round trip.

Causes: ``press(confirm)`` an 8/16 ms window passing the attacker's rule; ``press(hit run)`` the screen naming
the same pair at every hop for ``hit_run_ms``; ``press(persist)`` a suspect held ``persist_ms`` (one oscillator);
``notch(weak at once)`` a weak suspect carrying ``weak_notch_fraction``; ``notch(silent, named)`` a silent weak
suspect a short window named with a margin; ``notch(short window, verified)`` a 2/4 ms suspect verified by its
centred 16 ms window (support, fraction, coherence or isolation); ``notch(screen 8/16 ms)`` a longer screen window;
``... after silent`` the same opening a silent suspect's notch; ``conceal`` made-up audio.

It watches the masker from outside (wrapping its ``_open_notch`` and ``_open_press`` and reading the caller's
frame), so it changes nothing of what the masker does; a cause it cannot tell is printed as ``other``.

Run:  python benchmarks/masker_causes.py [--split tune] [--sources drascula,hyperrogue] [--speed 1.0]
      [--legacy-rev REV]   (the masker of a git revision, e.g. main, for before/after)
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # single-threaded, before numpy
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import collections  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402

from dtmfguard.dsp import g711  # noqa: E402
from dtmfguard.dsp import masker as M  # noqa: E402
from dtmfguard.testkit import corpora  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from masker import adversary_runs  # noqa: E402


def _cause(frame) -> str:
    """The rule that called ``_open_notch`` / ``_open_press``, from the calling frame's code and locals."""
    name = frame.f_code.co_name
    if name == "_concealment":
        return "conceal"
    if name != "_step":
        return f"other ({name})"
    loc = frame.f_locals
    code = frame.f_code
    src = _SOURCE.get(code)
    if src is None:
        import linecache

        src = _SOURCE[code] = lambda n: linecache.getline(code.co_filename, n)
    line = src(frame.f_lineno).strip()
    if "_open_press" in line:
        if "-(-lim" in line:
            return "press(persist)"
        return "press(confirm)" if loc.get("conf", -1) >= 0 else "press(hit run)"
    if "= [weak, e, e, self._open_notch" in line:
        return "notch(weak at once)"
    if "sp[3] = self._open_notch(max(self._align_down(onset" in line:
        return "notch(silent, named)"
    verified, length = loc.get("verified", -1), loc.get("length", 0)
    kind = "short window, verified" if verified >= 0 else f"screen {length * 1000 // 8000 if length else '?'} ms"
    if "= [sus, at, last, self._open_notch" in line:
        return f"notch({kind})"
    if "sp[3] = self._open_notch" in line:
        return f"notch({kind}) after silent"
    return "other"


_SOURCE: dict = {}


def watch(cls):
    """Wrap the span openers of masker class ``cls``; returns the list they append ``(kind, cause, span)`` to."""
    log: list = []
    open_notch, open_press = cls._open_notch, cls._open_press

    def notch(self, start, lim, **kwargs):  # (``join``: m13b's keyword, passed on)
        span = open_notch(self, start, lim, **kwargs)
        log.append(("notch", _cause(sys._getframe(1)), span))
        return span

    def press(self, *args, **kwargs):
        open_press(self, *args, **kwargs)
        log.append(("press", _cause(sys._getframe(1)), self._active))

    cls._open_notch, cls._open_press = notch, press
    return log


def _covered(runs, n: int) -> np.ndarray:
    sel = np.zeros(n, dtype=bool)
    for s, e in runs:
        sel[s:e] = True
    return sel


def breakdown(name: str, split: str, minutes: float, speed: float, log: list, cls=M.Masker) -> None:
    x = corpora.signal(name, split, max_seconds=minutes * 60, speed=speed).astype(np.int16)
    n = x.size
    mins = n / 8000 / 60
    runs = adversary_runs(x.astype(np.float64))
    adv = _covered(runs, n)
    log.clear()
    m = cls()
    out = np.concatenate([m.process(x[i: i + 160]) for i in range(0, n, 160)] + [m.flush()])[m.delay_samples:]
    changed = out != x
    print(f"{name} ({split} half, {speed:g}x, {mins:.1f} min)")
    print(f"  boundary: the attacker names {len(runs) / mins:.1f} runs/min in the unmasked audio, "
          f"{adv.mean():.3%} of samples")
    print(f"  masker: {len(m.masked_spans) / mins:.2f} flat masks/min, {len(m.notched_spans) / mins:.1f} notches/min, "
          f"{changed.mean():.3%} changed ({np.mean(changed & adv):.3%} inside the attacker's runs, "
          f"{np.mean(changed & ~adv):.3%} outside)")
    first: dict = {}
    for kind, cause, span in log:
        if span is not None:
            first.setdefault(id(span), (kind, cause, span))
    rows = collections.defaultdict(lambda: [0, 0, 0, []])
    owned = np.zeros(n, dtype=bool)
    for _kind, cause, span in first.values():
        s, e = span.start, span.end if span.end is not None else n
        fade = m._fade if span.source != "notch" else 0
        a, b = max(s - fade, 0), min(e + fade, n)
        mine = changed[a:b] & ~owned[a:b]
        owned[a:b] |= mine
        r = rows[cause]
        r[0] += 1
        r[1] += int(mine.sum())
        r[2] += int((mine & adv[a:b]).sum())
        r[3].append((e - s) / 8.0)
    for cause, (count, ch, inside, durs) in sorted(rows.items(), key=lambda kv: -kv[1][1]):
        d = np.array(durs)
        print(f"    {cause:36s} {count / mins:6.2f}/min  {ch / n:.3%} changed ({inside / n:.3%} inside)  "
              f"ms median {np.median(d):.0f} mean {d.mean():.0f} max {d.max():.0f}")
    if np.any(changed & ~owned):
        print(f"    (not attributed: {np.mean(changed & ~owned):.3%})")
    named = adversary_runs(g711.ulaw_decode(g711.ulaw_encode(out)))
    print(f"  the attacker names {len(named) / mins:.1f} runs/min in the output (G.711), "
          f"{sum(1 for s, e in named if e - s >= 64) / mins:.2f}/min of >= 8 ms", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="tune", choices=("tune", "report"))
    ap.add_argument("--sources", default="drascula,hyperrogue")
    ap.add_argument("--minutes", type=float, default=12.0)
    ap.add_argument("--speed", type=float, default=1.0, help="playback-speed variant (corpora.variant)")
    ap.add_argument("--legacy-rev", default="", help="break down the masker of this git revision instead")
    args = ap.parse_args()
    cls = M.Masker
    if args.legacy_rev:
        from masker import load_legacy

        cls = load_legacy(args.legacy_rev).Masker
        print(f"masker of {args.legacy_rev}")
    log = watch(cls)
    for name in args.sources.split(","):
        try:
            breakdown(name, args.split, args.minutes, args.speed, log, cls)
        except corpora.CorpusMissing as exc:
            print(f"{name}: skipped ({exc})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
