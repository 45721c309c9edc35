# SPDX-License-Identifier: GPL-2.0-or-later
"""benchmarks/oracle_boundary.py: the genie that treats what the masker left of each press after its first H ms."""
from __future__ import annotations

import re

import os
import sys

import numpy as np
import pytest

from _masker_util import bench_speech

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import oracle_boundary as OB  # noqa: E402


def test_genie_replaces_only_untreated_samples_after_the_head():
    out = np.arange(100.0)
    notched_all = -np.arange(100.0)
    sel = np.zeros(100, dtype=bool)
    sel[30:35] = True  # treated by the masker: left as it emitted them
    spans = [("1", 20, 40), ("2", 60, 70)]
    g = OB.genie(out, notched_all, sel, spans, head=5)
    want = out.copy()
    for a, b in ((25, 30), (35, 40), (65, 70)):
        want[a:b] = notched_all[a:b]
    assert np.array_equal(g, want) and np.array_equal(out, np.arange(100.0))
    assert np.array_equal(OB.genie(out, notched_all, sel, spans, head=1000), out)


def test_a_perfect_masker_leaves_the_oracle_less_than_the_masker(capsys):
    """On the masker without the detector's keypad burst (``--no-receiver``), which leaves the cell's first keys
    partly untreated: the genie with no head names fewer, with a head past every press as many.  With the receiver
    the masker's own output names no more than without it."""
    bench_speech(3200)  # (skips, naming the package, without the English prompts)
    assert OB.main(["--seeds", "3200", "--cells", "17", "--heads", "0,1000", "--no-receiver"]) == 0
    lines = capsys.readouterr().out.splitlines()
    own = int(lines[1].rsplit(" ", 1)[1])
    perfect, none = (int(line.rsplit(" ", 1)[1]) for line in lines[2:4])
    assert none == own and perfect < own  # (a head past every press changes nothing; no head removes the excess)
    assert OB.main(["--seeds", "3200", "--cells", "17", "--heads", "1000"]) == 0
    with_receiver = int(capsys.readouterr().out.splitlines()[1].rsplit(" ", 1)[1])
    assert with_receiver < own


def test_bad_arguments_exit_2():
    with pytest.raises(SystemExit) as exc:
        OB.main(["--seeds", "3200", "--cells", "99"])
    assert exc.value.code == 2


def test_by_index_groups_cover_every_press_once(capsys):
    bench_speech(3200)
    assert OB.main(["--seeds", "3200", "--cells", "17", "--heads", "1000"]) == 0
    lines = capsys.readouterr().out.splitlines()
    own = int(lines[1].rsplit(" ", 1)[1])
    row = re.compile(r"^\s*(\S+):\s+(\d+) \(chance\s+([\d.]+), bound\s+([\d.]+)\) \|\s+(\d+) \(chance\s+([\d.]+), "
                     r"bound\s+([\d.]+)\) \|\s+(\d+) of\s+(\d+), chance")
    rows = [m.groups() for m in map(row.match, lines) if m]
    assert [r[0] for r in rows] == ["0", "1-2", "3-5", "6+"]
    masker, profile, unmasked, n = ([int(r[k]) for r in rows] for k in (1, 4, 7, 8))
    assert sum(masker) == own  # (the masker's column is its own total, split)
    assert n == [1, 2, 3, 18]
    assert sum(unmasked) > own and sum(profile) <= own  # (unmasked: more; the profile: no more)
    for r, size in zip(rows, n):  # each group's chance of these presses: a share of them, its bound above it
        for chance, bound in ((float(r[2]), float(r[3])), (float(r[5]), float(r[6]))):
            assert 0.0 <= chance <= bound <= size + 4.0


def test_per_cell_rows_split_each_output_by_attacker_and_first_keys(capsys):
    bench_speech(3200)
    assert OB.main(["--seeds", "3200", "--cells", "17", "--heads", "1000", "--per-cell"]) == 0
    lines = capsys.readouterr().out.splitlines()
    own = int(lines[1].rsplit(" ", 1)[1])
    row = lines[-1]
    assert row.split()[:4] == ["3", "dB", "under", "speech,"]
    nums = [int(v) for v in row.replace("|", " ").replace("+", " ").split()[-14:]]
    presses, (unmasked, masker, profile) = nums[:2], (nums[2:6], nums[6:10], nums[10:14])
    assert presses == [OB.FIRST_KEYS, 24 - OB.FIRST_KEYS]
    assert masker[2] + masker[3] == own  # (the oracle's columns are the masker's own total, split)
    assert unmasked[2] + unmasked[3] > own >= profile[2] + profile[3]
    assert unmasked[0] + unmasked[1] > masker[0] + masker[1]  # (the blind attacker names keys in the input)
