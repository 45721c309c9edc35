# SPDX-License-Identifier: GPL-2.0-or-later
"""One BLAS thread in every process that imports dtmfguard before numpy (``dtmfguard/__init__.py``).

Why: the guard's SIP and media threads run under SCHED_RR.  The first BLAS call of a new call (a masker's band
basis, an eigendecomposition, on the SIP thread) woke OpenBLAS's thread pool, and the real-time caller spun on
its core waiting for helpers of lower priority until the kernel's real-time throttling let them run: 0.95 s per
new call on a 2-core machine, the caller's INVITE retransmitted meanwhile, the other calls' media threads on that
core starved (``benchmarks/calls.py``: 200-300 late ticks and lost calls at 50 calls)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

_CHILD = r"""
import ctypes, sys
if sys.argv[1] == "dtmfguard":
    import dtmfguard
import numpy
numpy.linalg.eigh(numpy.eye(4))  # (BLAS loaded and used)
paths = {line.split()[-1] for line in open("/proc/self/maps") if "openblas" in line.lower() and ".so" in line}
for path in sorted(paths):
    lib = ctypes.CDLL(path)
    for name in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads"):
        fn = getattr(lib, name, None)
        if fn is not None:
            print(int(fn()))
            sys.exit(0)
print("none")
"""


def _threads(first: str) -> int | None:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                                           "MKL_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", _CHILD, first], env=env, capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    return None if not out or out[-1] == "none" else int(out[-1])


def test_dtmfguard_first_gives_numpy_one_blas_thread():
    got = _threads("dtmfguard")
    if got is None:
        pytest.skip("numpy's BLAS here is not an OpenBLAS whose thread count can be read")
    assert got == 1
    if (os.cpu_count() or 1) > 1:  # (the control: numpy alone takes a thread per core here)
        assert _threads("numpy") > 1


def test_a_user_setting_wins(monkeypatch):
    """OPENBLAS_NUM_THREADS set by the user is left as it is (setdefault)."""
    code = "import os; os.environ['OPENBLAS_NUM_THREADS'] = '3'; import dtmfguard; print(os.environ['OPENBLAS_NUM_THREADS'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "3"
