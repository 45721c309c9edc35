"""Helpers the masker's rule tests share: masking in chunks, the agent's G.711 ear, the benchmark's talk-over
scenarios (``benchmarks/masker.py``'s speech and cells) and the check that a rule decides the same samples
with every backend and any chunking."""
from __future__ import annotations

import dataclasses
import functools

import numpy as np
from _corpus_util import need_speech
from _native_util import with_backend

from dtmfguard.dsp import g711, goertzel
from dtmfguard.dsp import masker as masker_mod
from dtmfguard.dsp.masker import Masker
from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS
from dtmfguard.testkit import adversary as A

_SPEECH: dict = {}

#: the keypad burst off (``keypad_burst_*``): inside a burst the payment profile's band notch covers what a single
#: rule adds (a suspect's notch there changes no sample), so a rule is shown necessary on the masker without it; the
#: keypad context (``keypad_context_ms``) off too: inside one every short window the screen names is notched, which
#: covers what a verification rule adds
NO_BURST = {"keypad_burst_presses": None, "keypad_context_ms": None}

#: the column tests (``verify_column_weak_*``, ``verify_column_onset_*``, ``verify_column_held_steady``, the 0.5 %
#: ``verify_column_near_*``) hide many of the cells other rules are pinned on: those tests switch them off with
#: the rule they are about
COLUMN_OFF = {"verify_column_weak_fraction": None, "verify_column_onset_fraction": None,
              "verify_column_held_steady": None, "verify_column_near_row": None}

#: the mid-length line test (``verify_mid_*``, helper h17a) hides some of the cells other rules are pinned on (a key under
#: louder speech named from one short window): those tests switch it off with their rule
MID_OFF = {"verify_mid_ms": None}

#: the first-look tiers of the mid-length test (``verify_mid_long_fraction``, ``verify_mid_since_fraction``, helper h19b)
#: hide a few cells other rules are pinned on (a key under louder speech named from one short window): those tests
#: switch them off with their rule
FIRST_LOOK_OFF = {"verify_mid_long_fraction": None, "verify_mid_since_fraction": None}

#: the output check inside a keypad burst's notch (``notch_inside_*``, helper h20a) flat-masks a few keys other rules are
#: pinned on, in cells where a burst opens (a key's onset inside the burst's notch, or a 4 ms window at a key's onset
#: under the payment profile): those tests switch it off with their rule
INSIDE_OFF = {"notch_inside_windows_ms": None}


def mask(x: np.ndarray, params=DEFAULT_MASKER_PARAMS, chunk: int = 160, cls=Masker, **options):
    """Mask ``x`` fed ``chunk`` samples at a time with a ``cls`` (other arguments: ``options``); the output aligned
    with the input, and the masker."""
    m = cls(params=params, **options)
    out = np.concatenate([m.process(x[i: i + chunk]) for i in range(0, x.size, chunk)] + [m.flush()])
    return out[m.delay_samples:], m


def heard(out: np.ndarray, codec: str = "ulaw") -> np.ndarray:
    """What the agent hears: the output through a G.711 round trip."""
    if codec == "ulaw":
        return g711.ulaw_decode(g711.ulaw_encode(out))
    return g711.alaw_decode(g711.alaw_encode(out))


def blind(x: np.ndarray, spans, params=DEFAULT_MASKER_PARAMS, codec: str = "ulaw") -> int:
    """Digits the blind attacker names in the masked output (the masker must not have failed closed)."""
    out, m = mask(x, params)
    assert m.errors == 0
    return A.count_recovered(heard(out, codec), spans)


def named_presses(x: np.ndarray, spans, params=DEFAULT_MASKER_PARAMS) -> list:
    """Indexes of the presses the blind attacker names (rightly) in the masked output, through µ-law."""
    out, m = mask(x, params)
    assert m.errors == 0
    got = A.answers(A.decode(heard(out), 8000), spans)
    return [k for k, (s, g) in enumerate(zip(spans, got)) if g is not None and g == A._span_fields(s)[0]]


@functools.lru_cache(maxsize=None)
def hyperrogue_tune(speed: float) -> np.ndarray:
    """The HyperRogue soundtrack's whole tune half at ``speed`` (int16; a variant's resampling depends on the
    length it is given), or a skip naming the missing package."""
    import pytest

    from dtmfguard.testkit import corpora

    try:
        return corpora.signal("hyperrogue", "tune", speed=speed, max_seconds=720).astype(np.int16)
    except corpora.CorpusMissing as exc:
        pytest.skip(f"hyperrogue-music not installed ({exc})")


def bench_speech(seed: int):
    """The benchmark's 240 s of speech for ``seed`` (loaded once per test process)."""
    if seed not in _SPEECH:
        _SPEECH[seed] = A.load_speech(240.0, seed=seed)  # as benchmarks/masker.py loads it
    return need_speech(_SPEECH[seed], f"speech of seed {seed}")


def bench_scenario(seed: int, index: int, **cond):
    """The benchmark's cell: condition ``index`` of its table (seed + index; boundary rows 100 + i), 24 presses."""
    return A.press_scenario(np.random.default_rng(seed + index), 24, speech=bench_speech(seed), **cond)


def _same(got, m, ref, m_ref, where) -> None:
    assert np.array_equal(got, ref), where
    assert m.masked_spans == m_ref.masked_spans and m.notched_spans == m_ref.notched_spans, where


def assert_rule_acts_alike(x: np.ndarray, off: dict, base=None) -> None:
    """Where a rule acts (the output differs with ``off`` applied to ``base``, by default the defaults without the
    keypad burst), numpy at 1000-sample chunks and C at 7, 160 and 1000 give numpy's 160-sample output, spans
    included."""
    if base is None:
        base = dataclasses.replace(DEFAULT_MASKER_PARAMS, **NO_BURST)
    ref, m_ref = with_backend("numpy", lambda: mask(x, base, chunk=160))
    without = with_backend("numpy", lambda: mask(x, dataclasses.replace(base, **off))[0])
    assert not np.array_equal(ref, without)
    runs = [("numpy", 1000)]
    if masker_mod._masker_native is not None:
        runs += [("native", c) for c in (7, 160, 1000)]
    for backend, chunk in runs:
        got, m = with_backend(backend, lambda c=chunk: mask(x, base, chunk=c))
        _same(got, m, ref, m_ref, (backend, chunk))


def assert_any_backend_alike(x: np.ndarray, chunk: int, params=DEFAULT_MASKER_PARAMS):
    """Every available backend fed ``chunk`` samples at a time gives numpy's 160-sample output, spans included;
    returns that reference masker (for the caller's own checks of what it did)."""
    ref, m_ref = with_backend("numpy", lambda: mask(x, params, chunk=160))
    for backend in goertzel.available_backends():
        got, m = with_backend(backend, lambda: mask(x, params, chunk=chunk))
        _same(got, m, ref, m_ref, backend)
    return m_ref


def assert_rule_hides_key(seed: int, index: int, cond: dict, off: dict) -> None:
    """The benchmark's cell (``seed``, ``index``, ``cond``) leaks no digit to the blind attacker with the default
    masker, and at least one with ``off`` applied to it: the rule ``off`` switches off is what hides the key (shown
    without the keypad burst, which may hide it too; its band notch, before the wider basis of ``notch_band_extra``,
    made a few keys off nominal nameable again: README, Masking, "Keypad burst" and "Band notch off nominal")."""
    x, spans = bench_scenario(seed, index, **cond)
    base = dataclasses.replace(DEFAULT_MASKER_PARAMS, **NO_BURST)
    assert blind(x, spans, base) == 0
    assert blind(x, spans, dataclasses.replace(base, **off)) >= 1


def assert_rule_acts(x: np.ndarray, off: dict, params=DEFAULT_MASKER_PARAMS) -> None:
    """The masker with ``params`` and with ``off`` applied to them give different outputs on ``x`` (the rule acts)."""
    out, _ = mask(x, params)
    ref, _ = mask(x, dataclasses.replace(params, **off))
    assert not np.array_equal(out, ref)


def treated(m, n: int) -> np.ndarray:
    """Input samples under the flat mask or a band notch."""
    sel = np.zeros(n, dtype=bool)
    for s in list(m.masked_spans) + list(m.notched_spans):
        sel[max(s.start, 0): max(min(s.end, n), 0)] = True
    return sel


def assert_rule_only_adds_treatment(x: np.ndarray, off: dict, base: dict | None = None) -> None:
    """Every sample flat-masked or notched with the rule switched ``off`` is flat-masked or notched with it on,
    and the rule treats more somewhere (it acts); ``base``: applied to the defaults in both runs (the keypad context off
    unless ``base`` says otherwise: inside one every short window the screen names is notched, whatever a rule adds)."""
    params = dataclasses.replace(DEFAULT_MASKER_PARAMS, **{"keypad_context_ms": None, **(base or {})})
    _, m_on = mask(x, params)
    _, m_off = mask(x, dataclasses.replace(params, **off))
    on, without = treated(m_on, x.size), treated(m_off, x.size)
    assert not np.any(without & ~on)
    assert np.any(on & ~without)


def case_only_adds_treatment(case: tuple, base: dict | None = None) -> None:
    """:func:`assert_rule_only_adds_treatment` on a rule test's case ``(speech seed, cell index, condition, off)``:
    the benchmark's scenario built from it (``base``: as there)."""
    seed, index, cond, off = case
    assert_rule_only_adds_treatment(bench_scenario(seed, index, **cond)[0], off, base)


def case_acts_alike(case: tuple) -> None:
    """:func:`assert_rule_acts_alike` on a rule test's case ``(speech seed, cell index, condition, off)``."""
    seed, index, cond, off = case
    assert_rule_acts_alike(bench_scenario(seed, index, **cond)[0], off)


def assert_rule_changes_only(x: np.ndarray, off: dict, region, base: dict | None = None) -> None:
    """With the rule switched ``off`` the masker flat-masks and notches the same spans, and the output differs (it
    does somewhere) only where ``region(m, n)`` (a bool array over ``n`` samples, ``m`` the masker with the rule)
    says (``base``: applied to the defaults in both)."""
    params = dataclasses.replace(DEFAULT_MASKER_PARAMS, **(base or {}))
    out, m = mask(x, params)
    out_off, m_off = mask(x, dataclasses.replace(params, **off))
    assert m.masked_spans == m_off.masked_spans and m.notched_spans == m_off.notched_spans
    n = min(out.size, out_off.size)
    diff = out[:n] != out_off[:n]
    assert diff.any()
    assert not np.any(diff & ~region(m, x.size)[:n])


# The benchmark's keys 3 dB under speech, 1 s presses under speech and the +-2 % cells (seed 2026): where rules meant
# for music must change no sample (``assert_keys_unchanged``).
SPEECH_KEY_CELLS = [
    (1, {"speech_under_db": -3.0}),
    (4, {"duration_ms": 1000.0, "speech_under_db": 10.0}),
    (12, {"freq_error": 0.02, "speech_around": True}),
    (13, {"freq_error": -0.02, "speech_around": True}),
]


def assert_keys_unchanged(index: int, cond: dict, off: dict) -> None:
    """The benchmark's cell (seed 2026, ``index``, ``cond``): the default masker's output is the same as with ``off``
    applied (the rules it switches off change no sample there), and the blind attacker names no key in it."""
    x, spans = bench_scenario(2026, index, **cond)
    x = np.asarray(x)
    out, _ = mask(x)
    ref, _ = mask(x, dataclasses.replace(DEFAULT_MASKER_PARAMS, **off))
    assert np.array_equal(out, ref)
    assert A.count_recovered(heard(out), spans) == 0


def fade_region(m, n: int) -> np.ndarray:
    """Input samples inside the fades (``m._fade`` before and after) of ``m``'s flat masks."""
    sel = np.zeros(n, dtype=bool)
    for s in m.masked_spans:
        sel[max(s.start - m._fade, 0): max(min(s.start, n), 0)] = True
        sel[max(s.end, 0): max(min(s.end + m._fade, n), 0)] = True
    return sel


def with_and_without(x: np.ndarray, without, label: str, changed_below: float | None = None):
    """``x`` masked by the defaults and by the params ``without`` (a rule switched off): both outputs and maskers,
    and how many samples each changed (printed beside the spans' counts).  ``changed_below``: the rule must change
    fewer than that share of the samples changed without it, and add no flat mask."""
    out, m = mask(x)
    before, m_before = mask(x, without)
    assert m.errors == 0 and m_before.errors == 0
    changed, changed_before = int(np.sum(out != x)), int(np.sum(before != x))
    print(f"{label}: flat masks {len(m_before.masked_spans)} -> {len(m.masked_spans)}, notches "
          f"{len(m_before.notched_spans)} -> {len(m.notched_spans)}, changed {changed_before} -> {changed} samples")
    if changed_below is not None:
        assert len(m.masked_spans) <= len(m_before.masked_spans)
        assert changed < changed_below * changed_before
    return out, m, before, m_before, changed, changed_before
