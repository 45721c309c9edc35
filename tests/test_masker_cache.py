# SPDX-License-Identifier: GPL-2.0-or-later
"""The masker's cached screen constants: shared per (screen windows, hop, rate), read-only, and equal to
what a masker computes from scratch; other options get their own."""
import dataclasses

import numpy as np
import pytest

from dtmfguard.dsp import masker as M
from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS


def _fresh(**kw):
    M._BOUND_GAIN_CACHE.clear()
    M._QUIET_SV2_CACHE.clear()
    return M.Masker(8000, **kw)


def test_cached_constants_equal_fresh_ones_and_are_shared_read_only():
    a = _fresh()
    gain, quiet = a._bound_gain(), a._quiet_bound()
    b = M.Masker(8000)  # from the cache
    assert b._bound_gain() is gain
    assert not gain.flags.writeable
    with pytest.raises(ValueError):
        gain[0] = 0.0
    assert b._quiet_bound() == quiet
    c = _fresh()  # recomputed from scratch: the same numbers
    assert np.array_equal(c._bound_gain(), gain) and c._quiet_bound() == quiet
    assert quiet > 0 and np.all(gain > 0)


def test_other_options_get_their_own_constants():
    base = _fresh()
    fewer = dataclasses.replace(DEFAULT_MASKER_PARAMS, screen_windows_ms=(8.0, 16.0))
    m = M.Masker(8000, params=fewer)
    assert m._bound_gain().shape == (2,) and base._bound_gain().shape == (4,)
    assert np.array_equal(m._bound_gain(), base._bound_gain()[2:])  # same windows, same bound
    # the quiet bound scales with the screen floor, which is not part of the cache key
    quieter = dataclasses.replace(DEFAULT_MASKER_PARAMS, screen_min_tone_dbm0=-55.0)
    q = M.Masker(8000, params=quieter)
    assert q._quiet_bound() == pytest.approx(base._quiet_bound() * 10 ** (-10 / 10), rel=1e-9)
    # a fresh computation for the changed windows agrees with the cached one
    g = m._bound_gain()
    assert np.array_equal(_fresh(params=fewer)._bound_gain(), g)
