# SPDX-License-Identifier: GPL-2.0-or-later
"""The Goertzel kernel: both backends compute the same DFT values, bad buffers
are refused with a clear error, and DTMFGUARD_BACKEND selects what it says.

The detector's events are only as backend-independent as these values, so the
agreement is checked far tighter (1e-9 relative) than any threshold uses.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import zlib

import numpy as np
import pytest

from dtmfguard.dsp import goertzel
from dtmfguard.dsp.params import DEFAULT_PARAMS, DTMF_HZ

RATES = (8000, 16000)


def _require_native():
    if "native" not in goertzel.available_backends():
        if os.environ.get("DTMFGUARD_REQUIRE_NATIVE") == "1":
            pytest.fail("DTMFGUARD_REQUIRE_NATIVE=1 but the C kernel dtmfguard.dsp._native was not built")
        pytest.skip("C kernel not built")
    return goertzel._native


def _with_backend(name, *args):
    previous = goertzel.backend()
    goertzel.set_backend(name)
    try:
        return goertzel.halfblock_dft(*args)
    finally:
        goertzel.set_backend(previous)


def _omegas(rate, harmonics=False):
    freqs = np.array(DTMF_HZ + (tuple(2 * f for f in DTMF_HZ) if harmonics else ()))
    return 2 * np.pi * freqs / rate


def _rel_err(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("half_block", [1, 2, 7, "params", 160])
@pytest.mark.parametrize("bins", ["dtmf8", "dtmf16", "random5"])
def test_native_matches_numpy_on_random_multichannel_signals(rate, half_block, bins):
    _require_native()
    rng = np.random.default_rng(zlib.crc32(f"{rate}/{half_block}/{bins}".encode()))
    if half_block == "params":
        half_block = DEFAULT_PARAMS.half_block_samples(rate)
    omegas = {
        "dtmf8": _omegas(rate),
        "dtmf16": _omegas(rate, harmonics=True),
        "random5": rng.uniform(0.01, np.pi - 0.01, 5),
    }[bins]
    # 1, 2, 3, 4, 5 and 7 channels x a block count that is not a multiple of 4 (the C kernel's lane
    # width), plus a partial half-block at the end that both must ignore.
    for channels in (1, 2, 3, 4, 5, 7):
        nh = int(rng.integers(1, 12))
        x = rng.standard_normal((channels, nh * half_block + half_block // 2)) * rng.uniform(1, 20000)
        s_np, e_np = _with_backend("numpy", x, half_block, omegas)
        s_c, e_c = _with_backend("native", x, half_block, omegas)
        assert s_c.shape == s_np.shape == (channels, nh, omegas.size)
        assert e_c.shape == e_np.shape == (channels, nh)
        assert _rel_err(s_c, s_np) < 1e-9, f"spectrum differs: {_rel_err(s_c, s_np):.2e} > 1e-9"
        assert _rel_err(e_c, e_np) < 1e-9, f"energy differs: {_rel_err(e_c, e_np):.2e} > 1e-9"


def _tone_dft(amplitude, omega0, phase, omega, n_samples):
    """Closed form of sum_n A cos(w0 n + phi) exp(-j w n), n = 0..N-1 (geometric series)."""

    def geom(theta):
        if abs(np.exp(1j * theta) - 1) < 1e-12:
            return n_samples
        return (1 - np.exp(1j * theta * n_samples)) / (1 - np.exp(1j * theta))

    positive = np.exp(1j * phase) * geom(omega0 - omega)
    negative = np.exp(-1j * phase) * geom(-omega0 - omega)
    return amplitude / 2 * (positive + negative)


@pytest.mark.parametrize("rate", RATES)
def test_pure_tone_gives_expected_magnitude_and_phase(backend, rate):
    half_block = DEFAULT_PARAMS.half_block_samples(rate)
    omegas = _omegas(rate)
    amplitude, phase = 9000.0, 0.7
    for k, f in enumerate(DTMF_HZ):
        omega0 = 2 * np.pi * f / rate
        n = np.arange(5 * half_block)
        x = amplitude * np.cos(omega0 * n + phase)
        spec, energy = goertzel.halfblock_dft(x, half_block, omegas)
        assert spec.shape == (5, len(DTMF_HZ)) and energy.shape == (5,)
        for h in range(5):
            # Each half-block's phase is referenced to its own first sample: the tone's phase there.
            phase_h = phase + omega0 * h * half_block
            expected = np.array([_tone_dft(amplitude, omega0, phase_h, w, half_block) for w in omegas])
            np.testing.assert_allclose(spec[h], expected, rtol=0, atol=1e-9 * amplitude * half_block)
            block = x[h * half_block:(h + 1) * half_block]
            np.testing.assert_allclose(energy[h], np.sum(block ** 2), rtol=1e-12)
        # On its own bin the magnitude is ~A*H/2 (the image at -w0 adds a small ripple) and the phase
        # advances by w0*H from one half-block to the next: what the detector's frequency check uses.
        own = spec[:, k]
        assert np.all(np.abs(np.abs(own) / (amplitude * half_block / 2) - 1) < 0.15)
        advance = np.angle(own[1:] / own[:-1])
        expected_advance = np.angle(np.exp(1j * omega0 * half_block))
        assert np.all(np.abs(np.angle(np.exp(1j * (advance - expected_advance)))) < 0.1)


def test_one_channel_input_and_trailing_samples(backend):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(51 * 4 + 50) * 1000
    omegas = _omegas(8000)
    spec1, e1 = goertzel.halfblock_dft(x, 51, omegas)
    spec2, e2 = goertzel.halfblock_dft(x[None, : 51 * 4], 51, omegas)
    assert spec1.shape == (4, 8) and e1.shape == (4,)
    np.testing.assert_array_equal(spec1, spec2[0])
    np.testing.assert_array_equal(e1, e2[0])
    # int16 input is accepted and means the same samples
    xi = np.round(x).astype(np.int16)
    np.testing.assert_allclose(goertzel.halfblock_dft(xi, 51, omegas)[0],
                               goertzel.halfblock_dft(xi.astype(float), 51, omegas)[0], rtol=1e-12)


def test_empty_inputs(backend):
    omegas = _omegas(8000)
    spec, energy = goertzel.halfblock_dft(np.zeros((3, 50)), 51, omegas)  # less than one half-block
    assert spec.shape == (3, 0, 8) and energy.shape == (3, 0)
    spec, energy = goertzel.halfblock_dft(np.zeros((0, 102)), 51, omegas)  # no channels
    assert spec.shape == (0, 2, 8) and energy.shape == (0, 2)


def test_native_backend_really_runs_the_c_kernel(backend, monkeypatch):
    """Guards against a silent fallback: with backend 'native' every call goes through _native."""
    if backend != "native":
        assert goertzel.backend() == "numpy"
        return
    calls = []
    real = goertzel._native.halfblock_dft

    class Spy:
        @staticmethod
        def halfblock_dft(*args):
            calls.append(args[1])
            return real(*args)

    monkeypatch.setattr(goertzel, "_native", Spy)
    goertzel.halfblock_dft(np.ones((2, 102)), 51, _omegas(8000))
    assert calls == [51]


def test_native_kernel_is_thread_safe():
    """It releases the GIL, so concurrent calls must not share state."""
    native = _require_native()
    rng = np.random.default_rng(5)
    omegas = _omegas(8000)
    inputs = [rng.standard_normal((8, 51 * 40)) * 3000 for _ in range(4)]
    expected = [_with_backend("numpy", x, 51, omegas) for x in inputs]
    results = [None] * len(inputs)

    def work(i):
        x = inputs[i]
        out = np.empty((8, 40, 8, 2))
        energy = np.empty((8, 40))
        for _ in range(50):
            native.halfblock_dft(x, 51, omegas, out, energy)
        results[i] = (out.view(np.complex128)[..., 0].copy(), energy.copy())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (s, e), (s_ref, e_ref) in zip(results, expected):
        assert _rel_err(s, s_ref) < 1e-9 and _rel_err(e, e_ref) < 1e-9


# ---- the C entry point refuses bad buffers with a clear message --------------------------------------------

def _good_args():
    x = np.zeros((2, 10))
    omegas = np.array([0.5, 1.0, 1.5])
    return [x, 2, omegas, np.zeros((2, 5, 3, 2)), np.zeros((2, 5))]


def _readonly(a):
    a = a.copy()
    a.setflags(write=False)
    return a


BAD_ARGS = [
    # (argument index, replacement, exception, message fragment)
    (0, np.zeros((2, 10), dtype=np.float32), TypeError, "x must hold float64 ('d'), got format 'f'"),
    (0, np.zeros((2, 10), dtype=">f8"), TypeError, "x must hold float64 ('d'), got format '>d'"),
    (0, np.zeros((2, 10), dtype=np.int16), TypeError, "x must hold float64"),
    (0, np.zeros((2, 20))[:, ::2], ValueError, "x must be C-contiguous"),
    (0, np.zeros((10, 2)).T, ValueError, "x must be C-contiguous"),
    (0, np.zeros(20), ValueError, "x must be 2-D, got 1-D"),
    (0, [[0.0] * 10] * 2, TypeError, "x must be a float64 buffer (got list)"),
    (0, None, TypeError, "x must be a float64 buffer (got NoneType)"),
    (0, np.zeros((2, 11)), ValueError, "x has 11 samples per channel, not a multiple of half_block=2"),
    (1, 0, ValueError, "half_block must be >= 1, got 0"),
    (1, -3, ValueError, "half_block must be >= 1, got -3"),
    (2, np.zeros((3, 1)), ValueError, "omegas must be 1-D, got 2-D"),
    (3, np.zeros((2, 5, 4, 2)), ValueError, "out must have shape (2, 5, 3, 2), got (2, 5, 4, 2)"),
    (3, np.zeros((2, 5, 3)), ValueError, "out must be 4-D, got 3-D"),
    (3, _readonly(np.zeros((2, 5, 3, 2))), TypeError, "out must be writable"),
    (3, np.zeros((2, 5, 3, 2), dtype=np.complex64), TypeError, "out must hold float64"),
    (3, memoryview(np.zeros((2, 5, 3, 2))).toreadonly(), TypeError, "out must be writable"),
    (3, np.zeros((2, 5, 3, 4))[..., ::2], ValueError, "out must be C-contiguous"),
    (2, b"\0" * 24, TypeError, "omegas must hold float64 ('d'), got format 'B'"),
    (4, np.zeros((2, 4)), ValueError, "energy must have shape (2, 5), got (2, 4)"),
    (4, _readonly(np.zeros((2, 5))), TypeError, "energy must be writable"),
]


@pytest.mark.parametrize("index,value,exc,message", BAD_ARGS)
def test_native_rejects_bad_buffers(index, value, exc, message):
    native = _require_native()
    args = _good_args()
    args[index] = value
    with pytest.raises(exc) as info:
        native.halfblock_dft(*args)
    assert message in str(info.value)
    assert str(info.value).startswith("halfblock_dft: ")


def test_native_rejects_outputs_sharing_memory():
    native = _require_native()
    x, h, omegas, _, energy = _good_args()
    mem = np.zeros(100)
    with pytest.raises(ValueError, match="out and energy must not share memory"):
        native.halfblock_dft(x, h, omegas, mem[:60].reshape(2, 5, 3, 2), mem[50:60].reshape(2, 5))
    xo = np.zeros(60)
    with pytest.raises(ValueError, match="must not share memory"):
        native.halfblock_dft(xo[:20].reshape(2, 10), h, omegas, xo.reshape(2, 5, 3, 2), energy)


def test_native_wrong_argument_count_and_types():
    native = _require_native()
    with pytest.raises(TypeError):
        native.halfblock_dft(np.zeros((1, 2)), 2, np.zeros(1))
    args = _good_args()
    args[1] = "2"
    with pytest.raises(TypeError):
        native.halfblock_dft(*args)


# ---- backend selection ------------------------------------------------------------------------------------

def _run_python(code, backend_env):
    env = dict(os.environ)
    env.pop("DTMFGUARD_BACKEND", None)
    if backend_env is not None:
        env["DTMFGUARD_BACKEND"] = backend_env
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                          check=False)


_PRINT_BACKEND = "from dtmfguard.dsp import goertzel; print(goertzel.backend())"


@pytest.mark.parametrize("value,expected", [("numpy", "numpy"), ("NumPy ", "numpy"), ("native", "native"),
                                            ("auto", "auto"), ("", "auto"), (None, "auto")])
def test_backend_environment_variable_selects_the_kernel(value, expected):
    if expected == "native" or expected == "auto":
        built = "native" in goertzel.available_backends()
        if expected == "native" and not built:
            _require_native()
        expected = "native" if built else "numpy"
    proc = _run_python(_PRINT_BACKEND, value)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == expected


def test_bogus_backend_is_a_clear_error():
    proc = _run_python(_PRINT_BACKEND, "bogus")
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last == ("dtmfguard.dsp.goertzel.BackendError: DTMFGUARD_BACKEND must be one of auto, numpy, native, "
                    "got 'bogus'")


@pytest.mark.parametrize("value", ["numpy", "native"])
def test_info_json_reports_the_active_backend(value):
    if value == "native":
        _require_native()
    env = dict(os.environ, DTMFGUARD_BACKEND=value)
    code = "import sys; from dtmfguard.cli import main; sys.exit(main())"
    proc = subprocess.run([sys.executable, "-c", code, "info", "--json"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["backend"] == value
    assert "numpy" in info["backends_available"]
    assert ("native" in info["backends_available"]) == ("native" in goertzel.available_backends())


def test_native_requested_but_not_built_is_a_clear_error(monkeypatch):
    previous = goertzel.backend()
    monkeypatch.setattr(goertzel, "_native", None)
    try:
        assert goertzel.available_backends() == ("numpy",)
        with pytest.raises(goertzel.BackendError, match=r"DTMFGUARD_BACKEND=native but the C kernel "
                                                        r"dtmfguard\.dsp\._native was not built"):
            goertzel.set_backend("native")
        assert goertzel.set_backend("auto") == "numpy"
        spec, energy = goertzel.halfblock_dft(np.ones(102), 51, _omegas(8000))  # still works, in numpy
        assert spec.shape == (2, 8) and np.allclose(energy, 51.0)
    finally:
        monkeypatch.undo()
        goertzel.set_backend(previous)
