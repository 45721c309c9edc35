# SPDX-License-Identifier: GPL-2.0-or-later
"""The vault gateway: token -> card only with the key, a wrong key fails clearly, nothing readable on
disk, idempotent, the security code never stored."""
from __future__ import annotations

import base64
import os
import sqlite3
import stat

import pytest

from dtmfguard.capture import CardDetails
from dtmfguard.capture.gateways import (
    GatewayConfigError, GatewayError, PaymentRequest, load_gateway, new_idempotency_key,
)
from dtmfguard.capture.gateways.vault import (
    TokenNotFound, VaultGateway, VaultKeyError, generate_key, load_key, write_key_file,
)

PAN = "4111111111111111"
KEY = bytes(range(32))


def store(vault, pan=PAN, key=None, amount=500):
    request = PaymentRequest(key or new_idempotency_key(), CardDetails(pan, "1139", "847"), amount, "GBP", "R1")
    return vault.submit(request)


def test_round_trip_only_with_the_key(tmp_path):
    path = tmp_path / "vault.db"
    vault = VaultGateway(path, key=KEY)
    result = store(vault)
    assert result.status == "tokenised" and result.token.startswith("tok_")
    assert not any(ch.isdigit() for ch in result.token)  # never mistakable for a PAN
    card = VaultGateway(path, key=KEY).detokenise(result.token)
    assert (card.pan, card.expiry, card.security_code) == (PAN, "1139", None)
    # the vault file and its write-ahead log (the newest records live there until a checkpoint)
    files = vault_files(path)
    assert [f.name for f in files] == ["vault.db", "vault.db-shm", "vault.db-wal"], files
    raw = b"".join(f.read_bytes() for f in files)
    assert PAN.encode() not in raw and b"411111" not in raw and b"1139" not in raw and b"847" not in raw
    assert b"1111" in raw  # last 4 in clear, for display and search
    assert all(stat.S_IMODE(os.stat(f).st_mode) == 0o600 for f in files), files


def vault_files(path):
    return sorted(p for p in path.parent.iterdir() if p.name.startswith(path.name))


def test_a_card_costs_one_log_sync_on_a_shared_connection(tmp_path):
    """Why a payment ends quickly on a busy disk: write-ahead logging, synced at commit (durable before the
    token is returned), on one connection per vault file shared by the gateways a worker builds per payment."""
    path = tmp_path / "vault.db"
    first, second = VaultGateway(path, key=KEY), VaultGateway(path, key=KEY)
    store(first)
    with sqlite3.connect(path) as conn:  # another process's view: the mode is the file's
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    from dtmfguard.capture.gateways.vault import _store

    assert _store(path) is _store(tmp_path / "." / "vault.db")
    assert _store(path).conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert second.count() == 1


def test_open_vault_files_are_bounded(tmp_path):
    """A process that opens many vaults (a test run) keeps a few connections, not one per vault ever used."""
    from dtmfguard.capture.gateways import vault as vault_mod

    vaults = [VaultGateway(tmp_path / f"v{i}.db", key=KEY) for i in range(vault_mod._MAX_STORES + 4)]
    tokens = [store(v).token for v in vaults]
    assert len(vault_mod._stores) == vault_mod._MAX_STORES
    assert vaults[0].detokenise(tokens[0]).pan == PAN  # a vault let go reopens on its next use


def test_a_replaced_or_removed_vault_file(tmp_path):
    path = tmp_path / "vault.db"
    vault = VaultGateway(path, key=KEY)
    token = store(vault).token
    for f in vault_files(path):
        f.unlink()
    with pytest.raises(GatewayError, match="vault file .* is missing"):
        store(vault)
    fresh = VaultGateway(path, key=KEY)  # a new file at the same path: a new connection, an empty vault
    with pytest.raises(TokenNotFound):
        fresh.detokenise(token)
    assert store(fresh).status == "tokenised" and vault.count() == 1


def test_wrong_key_fails_clearly_at_open(tmp_path):
    path = tmp_path / "vault.db"
    store(VaultGateway(path, key=KEY))
    with pytest.raises(VaultKeyError, match="does not match the key .* was created with"):
        VaultGateway(path, key=bytes(32))


def test_wrong_key_cannot_decrypt_even_without_the_key_check(tmp_path):
    path = tmp_path / "vault.db"
    token = store(VaultGateway(path, key=KEY)).token
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM meta")
    conn.close()
    with pytest.raises(VaultKeyError, match="wrong vault key or the record was altered"):
        VaultGateway(path, key=bytes(32)).detokenise(token)


def test_swapped_ciphertexts_are_detected(tmp_path):
    path = tmp_path / "vault.db"
    vault = VaultGateway(path, key=KEY)
    a, b = store(vault).token, store(vault, pan="5555555555554444").token
    with sqlite3.connect(path) as conn:
        rows = dict(conn.execute("SELECT token, ciphertext FROM cards").fetchall())
        nonces = dict(conn.execute("SELECT token, nonce FROM cards").fetchall())
        conn.execute("UPDATE cards SET ciphertext = ?, nonce = ? WHERE token = ?", (rows[b], nonces[b], a))
    conn.close()
    with pytest.raises(VaultKeyError):
        vault.detokenise(a)
    assert vault.detokenise(b).pan == "5555555555554444"


def test_idempotent_submit(tmp_path):
    vault = VaultGateway(tmp_path / "v.db", key=KEY)
    key = new_idempotency_key()
    first, second = store(vault, key=key), store(vault, key=key)
    assert first.token == second.token and vault.count() == 1


def test_delete_and_unknown_token(tmp_path):
    vault = VaultGateway(tmp_path / "v.db", key=KEY)
    token = store(vault).token
    with sqlite3.connect(tmp_path / "v.db") as conn:
        ciphertext = conn.execute("SELECT ciphertext FROM cards").fetchone()[0]
    conn.close()
    assert vault.delete(token) and not vault.delete(token)
    # nothing of the record is left in the vault's files (zeroed page, log checkpointed and truncated)
    assert not any(ciphertext in f.read_bytes() for f in vault_files(tmp_path / "v.db"))
    with pytest.raises(TokenNotFound, match="no card stored"):
        vault.detokenise(token)


@pytest.mark.parametrize("encode", [lambda k: k, lambda k: k.hex().encode() + b"\n", base64.b64encode])
def test_key_file_formats(tmp_path, encode):
    key_file = tmp_path / "vault.key"
    key_file.write_bytes(encode(KEY))
    key_file.chmod(0o600)
    assert load_key(key_file=key_file) == KEY


def test_key_from_environment_and_generated_key_file(tmp_path, monkeypatch):
    monkeypatch.setenv("DTMFGUARD_VAULT_KEY", KEY.hex())
    path = tmp_path / "v.db"
    token = store(load_gateway("vault", path=path)).token
    key_file = tmp_path / "new.key"
    new_key = write_key_file(key_file)
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600 and load_key(key_file=key_file) == new_key
    with pytest.raises(FileExistsError):
        write_key_file(key_file)
    assert VaultGateway(path, key_file=None).detokenise(token).pan == PAN
    assert len(generate_key()) == 32


def test_missing_or_malformed_key(tmp_path, monkeypatch):
    monkeypatch.delenv("DTMFGUARD_VAULT_KEY", raising=False)
    with pytest.raises(VaultKeyError, match="no vault key: set DTMFGUARD_VAULT_KEY"):
        VaultGateway(tmp_path / "v.db")
    with pytest.raises(VaultKeyError, match="32 bytes"):
        VaultGateway(tmp_path / "v.db", key=b"short")
    with pytest.raises(VaultKeyError, match="cannot read vault key file"):
        VaultGateway(tmp_path / "v.db", key_file=tmp_path / "missing.key")
    assert not (tmp_path / "v.db").exists()


def test_not_a_database(tmp_path):
    path = tmp_path / "v.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(GatewayConfigError, match="cannot open vault"):
        VaultGateway(path, key=KEY)


def test_card_is_required(tmp_path):
    vault = VaultGateway(tmp_path / "v.db", key=KEY)
    with pytest.raises(GatewayError, match="needs a card number"):
        vault.submit(PaymentRequest(new_idempotency_key(), None))
