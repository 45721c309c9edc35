# SPDX-License-Identifier: GPL-2.0-or-later
"""benchmarks/masker_code_pause.py: a card, a pause of speech, then the security code, per part and attacker."""
from __future__ import annotations

import os
import sys

import pytest

from _masker_util import bench_speech

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import masker_code_pause as CP  # noqa: E402


def _rows(capsys, argv):
    assert CP.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {}
    for line in lines[2:]:
        name, nums = line[:22].strip(), [int(float(v)) for v in line[22:].split()]
        rows[name] = dict(zip(("presses", "chance", "bound", "oracle_in", "oracle_out", "blind_in", "blind_out"), nums))
    return lines[0], rows


def test_the_code_after_a_pause_is_covered_by_the_lingering_burst(capsys):
    bench_speech(3200)
    # (a pause past the 20 s hold: only the linger reaches the code)
    # (the detector's keypad burst off in both runs: it opens one at the code's first key itself)
    argv = ["--seeds", "3200-3201", "--cells", "1,26", "--pause-s", "25", "--set", "keypad_burst_receiver=False"]
    head, on = _rows(capsys, argv)
    _, off = _rows(capsys, argv + ["--set", "keypad_burst_linger_presses=None"])
    assert "keypad bursts" in head and list(on) == list(CP.PARTS[:3])
    assert [on[p]["presses"] for p in CP.PARTS[:3]] == [2 * 2 * 6, 2 * 2 * 10, 2 * 2 * 3]
    for p in CP.PARTS[:2]:  # (the card is keyed before any linger: the same)
        assert on[p] == off[p]
    code = CP.PARTS[2]
    assert on[code]["oracle_in"] >= 10 and off[code]["oracle_out"] >= 4  # (the code's keys nameable, and left so)
    assert on[code]["oracle_out"] <= on[code]["bound"] < off[code]["oracle_out"]
    assert on[code]["blind_out"] == off[code]["blind_out"] == 0
    # without the linger, the detector's burst (opened at the code's first key) covers the rest of the code
    _, recv = _rows(capsys, argv[:-2] + ["--set", "keypad_burst_linger_presses=None"])
    assert recv[code]["oracle_out"] < off[code]["oracle_out"] and recv[code]["blind_out"] == 0


@pytest.mark.parametrize("argv", [["--seeds", "1", "--cells", "99"], ["--seeds", "1", "--pause-s", "0"],
                                  ["--seeds", "1", "--set", "nope=1"], ["--seeds", "x"]])
def test_bad_arguments_exit_2(argv):
    with pytest.raises(SystemExit) as exc:
        CP.main(argv)
    assert exc.value.code == 2


def test_a_card_keyed_in_two_runs_counts_the_keys_after_its_pause(capsys):
    """``--card-split 6``: the three keys after the mid-card pause are a part of their own; the 20 s hold reaches them
    after 15 s of speech, the old 3 s hold did not."""
    bench_speech(3200)
    argv = ["--seeds", "3200-3201", "--cells", "1,26", "--pause-s", "15", "--card-split", "6",
            "--set", "keypad_burst_receiver=False"]  # (the hold alone; the detector's burst would cover them too)
    _, now = _rows(capsys, argv)
    _, old = _rows(capsys, argv + ["--set", "keypad_burst_hold_ms=3000.0"])
    after = CP.PARTS[3]
    assert list(now) == list(CP.PARTS) and now[after]["presses"] == 2 * 2 * 3
    assert now["card, keys 7-16"]["presses"] == 2 * 2 * 7
    assert now[after]["oracle_out"] <= now[after]["bound"] < old[after]["oracle_out"]


def test_without_the_english_prompts_a_note_and_exit_1(capsys, monkeypatch):
    from dtmfguard.testkit import adversary

    monkeypatch.setattr(adversary, "load_speech", lambda *a, **k: None)
    assert CP.main(["--seeds", "1", "--cells", "1"]) == 1
    assert capsys.readouterr().out.strip() == "note: asterisk-core-sounds-en-wav not installed"
