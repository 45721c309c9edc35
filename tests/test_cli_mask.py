# SPDX-License-Identifier: GPL-2.0-or-later
"""``dtmfguard mask`` and ``dtmfguard inspect``: recordings keep their format, lose their digits,
and the input is never modified."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import soundfile as sf

from dtmfguard.testkit import adversary as A
from dtmfguard.testkit import synth
from dtmfguard.cli import main

PAN = "4111111111111111"


def _call(rng_seed=1):
    x, spans = synth.keypresses(PAN, tone_ms=70, gap_ms=70, level_dbm0=-12, rng=np.random.default_rng(rng_seed))
    noise = synth.white_noise(x.size, 30.0, np.random.default_rng(rng_seed))
    return np.clip(np.round(x + noise), -32768, 32767).astype(np.int16), spans


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("subtype,dtype", [("PCM_16", "int16"), ("ULAW", "int16"), ("FLOAT", "float64"),
                                           ("PCM_24", "float64")])
def test_mask_keeps_format_and_removes_digits(tmp_path, capsys, subtype, dtype):
    x, spans = _call()
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    data = x if dtype == "int16" else x / 32768.0
    sf.write(src, data, 8000, subtype=subtype)
    before = _digest(src)
    assert main(["mask", "--json", str(src), str(dst)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert _digest(src) == before
    info, info_in = sf.info(dst), sf.info(src)
    assert (info.samplerate, info.channels, info.subtype, info.frames) == \
        (info_in.samplerate, info_in.channels, info_in.subtype, info_in.frames)
    y, _ = sf.read(dst, dtype="float64")  # libsndfile does not scale float files read as int16
    x_in, _ = sf.read(src, dtype="float64")
    y, x_in = y * 32768.0, x_in * 32768.0
    assert A.count_recovered(x_in, spans) >= 15
    assert A.count_recovered(y, spans) == 0
    assert report["per_channel"][0]["masked_spans"] >= 16
    assert PAN not in json.dumps(report)
    if subtype == "PCM_16":  # far from any tone, samples are untouched
        assert np.array_equal(y[: spans[0].start - 200], x_in[: spans[0].start - 200])


def test_stereo_each_channel_masked(tmp_path):
    x, spans = _call()
    agent = np.round(synth.white_noise(x.size, 200.0, np.random.default_rng(3))).astype(np.int16)
    src, dst = tmp_path / "st.wav", tmp_path / "o.wav"
    sf.write(src, np.stack([x, agent], 1), 8000, subtype="PCM_16")
    assert main(["mask", "-q", str(src), str(dst)]) == 0
    y, _ = sf.read(dst, dtype="int16", always_2d=True)
    assert y.shape == (x.size, 2)
    assert A.count_recovered(y[:, 0], spans) == 0
    assert np.array_equal(y[:, 1], agent)  # no tones on the agent side: untouched


def test_batch_report_progress_and_errors(tmp_path, capsys):
    x, _ = _call()
    files = []
    for i in range(3):
        p = tmp_path / f"c{i}.wav"
        sf.write(p, x, 8000, subtype="PCM_16")
        files.append(p)
    bad = tmp_path / "trunc.wav"
    bad.write_bytes(files[0].read_bytes()[:5000])
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.int16), 8000, subtype="PCM_16")
    junk = tmp_path / "junk.wav"
    junk.write_text("not audio")
    out = tmp_path / "out"
    out.mkdir()
    digests = {p: _digest(p) for p in files + [bad, empty, junk]}
    rc = main(["mask", "--out-dir", str(out), "--jobs", "2"] + [str(p) for p in files + [bad, empty, junk]])
    err = capsys.readouterr().err
    assert rc == 2
    assert "truncated WAV" in err and "contains no samples" in err and "not a readable audio file" in err
    assert "6/6 files" in err
    assert all(_digest(p) == d for p, d in digests.items())
    report = json.loads((out / "mask-report.json").read_text())
    assert report["masked"] == 3 and report["failed"] == 3
    assert sorted(f.name for f in out.glob("*.wav")) == ["c0.wav", "c1.wav", "c2.wav"]
    assert not list(out.glob(".dtmfguard-*"))  # no temporary left behind
    assert PAN not in (out / "mask-report.json").read_text() and PAN not in err


def test_refuses_to_overwrite_input_unless_forced(tmp_path, capsys):
    x, spans = _call()
    src = tmp_path / "in.wav"
    sf.write(src, x, 8000, subtype="PCM_16")
    before = _digest(src)
    assert main(["mask", str(src), str(src)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert _digest(src) == before
    other = tmp_path / "exists.wav"
    other.write_bytes(b"keep me")
    assert main(["mask", str(src), str(other)]) == 2
    assert other.read_bytes() == b"keep me"
    assert main(["mask", "--force", "-q", str(src), str(src)]) == 0
    y, _ = sf.read(src, dtype="int16")
    assert A.count_recovered(y, spans) == 0


def test_missing_input_is_one_line_error(tmp_path, capsys):
    assert main(["mask", str(tmp_path / "nope.wav"), str(tmp_path / "o.wav")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no such file" in err


def test_inspect_draws_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    x, _ = _call()
    src, png = tmp_path / "c.wav", tmp_path / "c.png"
    sf.write(src, x, 8000, subtype="PCM_16")
    assert main(["inspect", str(src), "--png", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert PAN not in capsys.readouterr().out


def test_inspect_without_matplotlib_says_so(tmp_path, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_mpl(name, *a, **k):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_mpl)
    src = tmp_path / "c.wav"
    sf.write(src, _call()[0], 8000, subtype="PCM_16")
    assert main(["inspect", str(src), "--png", str(tmp_path / "x.png")]) == 2
    assert "pip install 'dtmfguard[plot]'" in capsys.readouterr().err


@pytest.mark.parametrize("subtype", ["PCM_16", "FLOAT"])
def test_payment_profile_for_the_whole_file(tmp_path, capsys, subtype):
    """``--payment``: keys under louder speech-like audio leave nothing the oracle-timed attacker names above
    chance; without it the same file keeps at least as much (the masker's keypad burst switches the same band notch on
    by itself, but only after its third press); the report says so."""
    from _corpus_util import need_speech, speech

    sp = need_speech(speech(30.0, seed=9), "--payment")
    x, spans = A.press_scenario(np.random.default_rng(11), 16, speech=sp, speech_under_db=-3.0)
    x = np.clip(np.round(x), -32768, 32767).astype(np.int16)
    src = tmp_path / "in.wav"
    sf.write(src, x if subtype == "PCM_16" else x / 32768.0, 8000, subtype=subtype)
    scores = {}
    for flag in ([], ["--payment"]):
        dst = tmp_path / f"out{len(flag)}.wav"
        assert main(["mask", "--json", *flag, str(src), str(dst)]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["payment"] is bool(flag)
        y, _ = sf.read(dst, dtype="float64")
        scores[bool(flag)] = A.oracle_score(y * 32768.0, spans)
    print(scores, A.chance_bound(len(spans)))
    assert scores[True] <= A.chance_bound(len(spans)) and scores[True] < scores[False]


def test_files_are_masked_with_the_live_look_ahead_and_help_says_which(tmp_path, capsys):
    """Issue 12: recordings and live calls share one look-ahead; ``--help`` states the value the code uses (it
    said 40 ms, a file default of an earlier masker, while 20 ms was used)."""
    from dtmfguard.dsp.masker import Masker

    live_ms = Masker(8000).lookahead_ms
    x, _ = _call()
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(src, x, 8000, subtype="PCM_16")
    assert main(["mask", "--json", str(src), str(dst)]) == 0
    assert json.loads(capsys.readouterr().out)["lookahead_ms"] == live_ms
    for command in ("mask", "inspect"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert f"(default {live_ms:g}, as on live calls)" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("command", ["mask", "inspect"])
@pytest.mark.parametrize("value", ["-5", "nan", "1e9", "twenty"])
def test_bad_look_ahead_is_a_usage_error_before_any_work(tmp_path, capsys, command, value):
    """An out-of-range look-ahead was an "internal error" (exit 3) from deep in the masker; now argparse's exit 2
    with one line naming the option, and no output written."""
    src = tmp_path / "in.wav"
    sf.write(src, _call()[0], 8000, subtype="PCM_16")
    out = ["--png", str(tmp_path / "o.png")] if command == "inspect" else [str(tmp_path / "o.wav")]
    with pytest.raises(SystemExit) as exc:
        main([command, "--lookahead-ms", value, str(src)] + out)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--lookahead-ms" in err and value in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]
