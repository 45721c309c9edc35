# SPDX-License-Identifier: GPL-2.0-or-later
"""The benchmarks' background load (benchmarks/_load.py): parsed as the --load options say, every process it
starts is gone afterwards with the writers' files, also when the measurement fails."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from _load import Load, running  # noqa: E402


@pytest.mark.parametrize("text, cpu, io", [("0", 0, 0), ("", 0, 0), ("2", 2, 0), ("1io", 0, 1), ("io", 0, 1),
                                           ("2+1io", 2, 1), ("1+1+3io", 2, 3)])
def test_load_text(text, cpu, io):
    load = Load(text)
    assert (load.cpu, load.io, load.text) == (cpu, io, text)
    assert str(load) == f"{cpu} busy loop(s), {io} disk writer(s)"


@pytest.mark.parametrize("text", ["x", "2+yio", "1.5", "-1"])
def test_bad_load_text_is_refused(text):
    with pytest.raises(ValueError, match="load"):
        Load(text)


def test_writers_only():
    load = Load.writers(2)
    assert (load.cpu, load.io) == (0, 2)


def test_running_starts_and_stops_everything(tmp_path):
    with pytest.raises(RuntimeError, match="measurement failed"):
        with running(Load("1+1io"), tmp_path) as procs:
            assert len(procs) == 2 and all(p.poll() is None for p in procs)
            deadline = time.monotonic() + 10
            while not (tmp_path / "io-0.bin").exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            assert (tmp_path / "io-0.bin").exists()  # the writer writes
            raise RuntimeError("measurement failed")
    assert all(p.returncode is not None for p in procs)
    assert not list(tmp_path.glob("io-*.bin"))
