# SPDX-License-Identifier: GPL-2.0-or-later
"""Audit trail: records chained by SHA-256; verify detects an edited, removed, inserted or reordered
record, a cut tail against a head anchor, partial writes, and card numbers; appends refuse card data."""
from __future__ import annotations

import json
import threading

import pytest

from dtmfguard.capture.audit import GENESIS_HASH, AuditError, AuditTrail, record_hash, verify_file
from dtmfguard.cli import main


def make_trail(path, count=5):
    trail = AuditTrail(path, fsync=False)
    return [trail.append({"event": "test", "n": i, "agent_id": "a1"}) for i in range(count)]


def lines(path):
    return path.read_text().splitlines(keepends=True)


def kinds(report):
    return {problem.kind for problem in report.problems}


def test_chain_is_intact(tmp_path):
    path = tmp_path / "audit.jsonl"
    records = make_trail(path)
    report = verify_file(path)
    assert report.ok and report.records == 5 and report.head == records[-1]["hash"]
    assert records[0]["prev"] == GENESIS_HASH and records[0]["seq"] == 0
    assert all(b["prev"] == a["hash"] for a, b in zip(records, records[1:]))
    assert all(record_hash(r) == r["hash"] for r in records)


def test_reopening_continues_the_chain(tmp_path):
    path = tmp_path / "audit.jsonl"
    make_trail(path, 2)
    record = AuditTrail(path).append({"event": "later"})
    assert record["seq"] == 2 and verify_file(path).ok


def test_edited_record_is_detected(tmp_path):
    path = tmp_path / "audit.jsonl"
    make_trail(path)
    content = lines(path)
    content[2] = content[2].replace('"n":2', '"n":7')
    path.write_text("".join(content))
    report = verify_file(path)
    assert kinds(report) == {"edited"} and report.problems[0].line == 3


def test_removed_record_is_detected(tmp_path):
    path = tmp_path / "audit.jsonl"
    make_trail(path)
    content = lines(path)
    del content[2]
    path.write_text("".join(content))
    report = verify_file(path)
    assert kinds(report) == {"chain", "sequence"} and report.problems[0].line == 3


def test_reordered_records_are_detected(tmp_path):
    path = tmp_path / "audit.jsonl"
    make_trail(path)
    content = lines(path)
    content[1], content[3] = content[3], content[1]
    path.write_text("".join(content))
    assert "chain" in kinds(verify_file(path))


def test_inserted_record_is_detected(tmp_path):
    path = tmp_path / "audit.jsonl"
    make_trail(path)
    content = lines(path)
    forged = json.loads(content[1])
    forged["n"] = 99
    forged["hash"] = record_hash(forged)  # a self-consistent forgery still breaks the chain after it
    content.insert(2, json.dumps(forged) + "\n")
    path.write_text("".join(content))
    assert "chain" in kinds(verify_file(path))


def test_cut_tail_is_detected_against_the_head_anchor(tmp_path):
    path = tmp_path / "audit.jsonl"
    head = make_trail(path)[-1]["hash"]
    path.write_text("".join(lines(path)[:-1]))
    assert verify_file(path).ok  # a plain chain cannot see this ...
    assert kinds(verify_file(path, expect_head=head)) == {"head"}  # ... the anchor can


def test_partial_and_garbage_lines(tmp_path):
    path = tmp_path / "audit.jsonl"
    make_trail(path, 2)
    with open(path, "a") as handle:
        handle.write('{"event": "half')
    assert {"partial", "unreadable"} <= kinds(verify_file(path))
    with pytest.raises(AuditError, match="partial record"):
        AuditTrail(path).append({"event": "x"})


@pytest.mark.parametrize("record, message", [
    ({"event": "x", "note": "card 4111111111111111"}, "looks like a card number"),
    ({"event": "x", "pan": "1111"}, "key 'pan' is card data"),
    ({"event": "x", "nested": {"cvv": "1"}}, "key 'cvv' is card data"),
    ({"event": "x", "items": [{"expiry": "1"}]}, "key 'expiry' is card data"),
    ({"event": "x", "hash": "0"}, "set by the trail"),
])
def test_append_refuses_card_data(tmp_path, record, message):
    path = tmp_path / "audit.jsonl"
    with pytest.raises(AuditError, match=message) as info:
        AuditTrail(path).append(record)
    assert "4111111111111111" not in str(info.value)
    assert not path.exists() or path.read_text() == ""


def test_verify_flags_a_card_number_written_by_hand(tmp_path):
    path = tmp_path / "audit.jsonl"
    make_trail(path, 1)
    with open(path, "a") as handle:
        handle.write('{"note": "4111111111111111", "hash": "0", "prev": "0", "seq": 1}\n')
    assert "card_data" in kinds(verify_file(path))


def test_concurrent_appends_keep_one_chain(tmp_path):
    path = tmp_path / "audit.jsonl"
    trails = [AuditTrail(path, fsync=False) for _ in range(4)]  # separate objects, as separate processes

    def work(trail, k):
        for i in range(25):
            trail.append({"event": "t", "worker": k, "i": i})

    threads = [threading.Thread(target=work, args=(t, k)) for k, t in enumerate(trails)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = verify_file(path)
    assert report.ok and report.records == 100


def test_cli_verify(tmp_path, capsys):
    path = tmp_path / "audit.jsonl"
    head = make_trail(path)[-1]["hash"]
    assert main(["audit", "verify", str(path)]) == 0
    assert f"OK, 5 records, head {head}" in capsys.readouterr().out
    assert main(["audit", "verify", "--json", "--head", head, str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    content = lines(path)
    del content[1]
    path.write_text("".join(content))
    assert main(["audit", "verify", str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "line 2: chain" in out
    assert main(["audit", "verify", "--json", str(path)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and {p["kind"] for p in report["problems"]} == {"chain", "sequence"}
    assert main(["audit", "verify", str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err
