# SPDX-License-Identifier: GPL-2.0-or-later
"""The vault's store of one card, old way vs new way, interleaved in one run, idle and beside disk writers.

Why: a payment's end (and, in secure mode, the relaying of the customer's next keys) waits for the vault's
answer, and the answer waits for the card to be on disk.  ``journal``: what the vault did before, a new
SQLite connection per card in the default rollback-journal mode (journal file created, synced, database
synced, journal removed).  ``wal``: :class:`~dtmfguard.capture.gateways.vault.VaultGateway` now, one shared
connection per vault file, write-ahead log synced at commit.  Both store the same encrypted row with
``synchronous = FULL`` (durable before the token is returned).  The end-to-end figures (last key -> secure
mode off) are benchmarks/payment_latency.py; this one isolates the store, alternating the two ways card by
card so that both meet the same disk.

Usage: ``python benchmarks/vault_store.py --cards 30 --writers 0,2``
"""
from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _load import Load, running  # noqa: E402

from dtmfguard.capture import CardDetails  # noqa: E402
from dtmfguard.capture.gateways import PaymentRequest, new_idempotency_key  # noqa: E402
from dtmfguard.capture.gateways.vault import _SCHEMA, VaultGateway  # noqa: E402


def journal_store(path: Path) -> None:
    """The old way: a connection per card, rollback journal, secure_delete, synchronous FULL (default)."""
    conn = sqlite3.connect(path, timeout=10.0)
    try:
        conn.execute("PRAGMA secure_delete = ON")
        with conn:
            conn.execute("SELECT token FROM cards WHERE idempotency_key = ?", (new_idempotency_key(),)).fetchone()
            conn.execute("INSERT INTO cards (token, idempotency_key, created, brand, last4, nonce, ciphertext, amount,"
                         " currency, reference) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (new_idempotency_key(), new_idempotency_key(), time.time(), "visa", "1111", os.urandom(12),
                          os.urandom(40), 1000, "GBP", None))
    finally:
        conn.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cards", type=int, default=30, help="cards stored each way per condition")
    p.add_argument("--writers", default="0,2", help="comma-separated numbers of disk writers beside it")
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vault-store-", dir=os.environ.get("TMPDIR", "/tmp")))
    print(f"ms per card stored; median / p90 / max; {a.cards} cards each way, alternating")
    print(f"{'writers':>7s} {'journal (before)':>26s} {'wal (now)':>26s} {'median ratio':>13s}")
    for writers in [int(w) for w in a.writers.split(",")]:
        with running(Load.writers(writers), tmp):
            old = tmp / f"old-{writers}.sqlite"
            with sqlite3.connect(old) as conn:
                conn.executescript(_SCHEMA)
            conn.close()
            vault = VaultGateway(tmp / f"new-{writers}.sqlite", key=bytes(32))
            time.sleep(2.0 if writers else 0.0)  # let the writers fill the page cache
            times = {"journal": [], "wal": []}
            for _ in range(a.cards):
                t = time.perf_counter()
                journal_store(old)
                times["journal"].append(1000 * (time.perf_counter() - t))
                card = CardDetails("4111111111111111", "1230", "123")  # a test PAN
                t = time.perf_counter()
                vault.submit(PaymentRequest(new_idempotency_key(), card, 1000, "GBP"))
                times["wal"].append(1000 * (time.perf_counter() - t))
                time.sleep(0.1)
        cells = []
        for way in ("journal", "wal"):
            v = np.asarray(times[way])
            cells.append(f"{np.median(v):8.1f} {np.percentile(v, 90):8.1f} {v.max():8.1f}")
        ratio = np.median(times["wal"]) / np.median(times["journal"])
        print(f"{writers:7d} {cells[0]:>26s} {cells[1]:>26s} {ratio:13.2f}", flush=True)
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
