# SPDX-License-Identifier: GPL-2.0-or-later
"""``vault``: the embedded default gateway, a local token vault in SQLite encrypted with AES-256-GCM.

It lets dtmfguard run (and the demo work) with no processor: the card number and expiry are encrypted
and stored under a random letters-only token that the business can later hand to its processor.  PCI DSS
v4.0 Req. 3.5.1 asks that a stored PAN be unreadable (strong cryptography; AES-GCM here, a 96-bit random
nonce per record, the token as associated data so ciphertexts cannot be swapped between rows).
Req. 3.3.1 forbids storing the security code after authorisation; a vault never authorises, so it
never stores the security code at all: it is dropped with the rest of the card object.

The 256-bit key comes from ``key=`` (bytes), a key file (``key_file=``) or the environment
(``DTMFGUARD_VAULT_KEY``), as 32 raw bytes, 64 hex digits or base64.  A key check value (HMAC of a fixed
label) is stored on creation, so opening a vault with the wrong key fails at once with
:class:`VaultKeyError`, not later with a corrupt-looking record.  Brand and last 4 are stored in clear
for display and search.
"""
from __future__ import annotations

import base64
import binascii
import collections
import contextlib
import hashlib
import hmac
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterator, Optional, Union

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..card import CardDetails, wipe
from .base import Gateway, GatewayConfigError, GatewayError, GatewayResult, PaymentRequest, new_token

__all__ = ["VaultGateway", "VaultKeyError", "TokenNotFound", "generate_key", "load_key", "write_key_file",
           "DEFAULT_VAULT_PATH", "KEY_ENV"]

logger = logging.getLogger(__name__)

KEY_ENV = "DTMFGUARD_VAULT_KEY"
PATH_ENV = "DTMFGUARD_VAULT_PATH"
DEFAULT_VAULT_PATH = "dtmfguard-vault.sqlite3"
_KEY_CHECK_LABEL = b"dtmfguard vault key check v1"
_AAD_PREFIX = b"dtmfguard-vault-v1|"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS cards (
    token TEXT PRIMARY KEY,
    idempotency_key TEXT UNIQUE NOT NULL,
    created REAL NOT NULL,
    brand TEXT NOT NULL,
    last4 TEXT NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    amount INTEGER,
    currency TEXT,
    reference TEXT
);
"""


class VaultKeyError(GatewayConfigError):
    """No key, a malformed key, or a key that does not open this vault."""


class TokenNotFound(GatewayError, KeyError):
    """No card is stored under this token."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "token not found"


def generate_key() -> bytes:
    """A fresh random 256-bit key."""
    return AESGCM.generate_key(bit_length=256)


def write_key_file(path: Union[str, os.PathLike]) -> bytes:
    """Create a new key file (hex, mode 0600); refuse to overwrite an existing one."""
    key = generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key.hex() + "\n")
    return key


def _parse_key(raw: bytes, where: str) -> bytes:
    if len(raw) == 32:
        return bytes(raw)
    text = raw.strip()
    if len(text) == 64:
        try:
            return binascii.unhexlify(text)
        except binascii.Error:
            pass
    try:
        key = base64.b64decode(text, validate=True)
        if len(key) == 32:
            return key
    except binascii.Error:
        pass
    raise VaultKeyError(f"vault key from {where} must be 32 bytes: raw, 64 hex digits or base64")


def load_key(key: Optional[bytes] = None, key_file: Union[None, str, os.PathLike] = None,
             key_env: str = KEY_ENV) -> bytes:
    """The vault key from ``key``, else ``key_file``, else the environment variable ``key_env``."""
    if key is not None:
        return _parse_key(bytes(key), "key=")
    if key_file is not None:
        try:
            raw = Path(key_file).read_bytes()
        except OSError as exc:
            raise VaultKeyError(f"cannot read vault key file {os.fspath(key_file)!r} ({exc.strerror})") from None
        mode = os.stat(key_file).st_mode
        if mode & 0o077:
            logger.warning("vault key file %s is readable by group/others; chmod 600 it", os.fspath(key_file))
        return _parse_key(raw, "the key file")
    value = os.environ.get(key_env)
    if value:
        return _parse_key(value.encode(), f"${key_env}")
    raise VaultKeyError(f"no vault key: set {key_env} or give key_file (create one with "
                        "dtmfguard.capture.gateways.vault.write_key_file)")


class _Store:
    """One SQLite connection to a vault file, shared by every :class:`VaultGateway` on that file in this
    process (``serve`` builds a gateway per payment), used under :attr:`lock` by one thread at a time.

    Why: a payment's end waits for the vault's answer, and the answer waits for the card to be on disk.
    A connection per operation in SQLite's default rollback-journal mode cost three to four fsyncs and
    the creation and removal of the journal file per card; on a busy file system (measured with two
    processes writing large files beside it, benchmarks/payment_latency.py) that took 0.6-1.0 s per card
    and up to 2.7 s in the test suite on four workers.  Write-ahead logging with ``synchronous = FULL``
    makes a stored card durable with one fsync of the log (still before the token is returned); it needs
    the connection kept open (closing the last one checkpoints and removes the log: more fsyncs).

    The log (``<vault>-wal``, ``<vault>-shm``, created by SQLite with the vault file's own permissions)
    holds the newest records until a checkpoint copies them into the vault file: back a vault up with
    SQLite's backup API (``sqlite3 vault .backup copy``) or with all three files, never the main file
    alone.  It must live on a local file system (write-ahead logging needs shared memory); where SQLite
    cannot use it, the vault stays in rollback-journal mode (slower, equally safe).
    """

    def __init__(self, path: Path, ident: tuple):
        self.ident = ident
        self.lock = threading.Lock()
        self.conn = sqlite3.connect(path, timeout=10.0, check_same_thread=False)
        try:
            # Deleted rows are overwritten with zeros instead of lingering in free pages.
            self.conn.execute("PRAGMA secure_delete = ON")
            mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            self.conn.execute("PRAGMA synchronous = FULL")  # durable at commit: the log is synced
            if str(mode).lower() != "wal":
                logger.warning("vault %s: write-ahead logging unavailable (journal mode %s): each card costs "
                               "several disk syncs", os.fspath(path), mode)
        except BaseException:
            self.conn.close()
            raise


#: the open vault files, newest use last; a process normally has one (a test process many: the oldest is let
#: go beyond _MAX_STORES, and closes once no operation uses it)
_stores: "collections.OrderedDict[str, _Store]" = collections.OrderedDict()
_stores_lock = threading.Lock()
_MAX_STORES = 8


def _store(path: Path) -> _Store:
    """The shared connection to the vault file at ``path`` (a new one if the file was replaced)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise GatewayError(f"the vault file {os.fspath(path)!r} is missing") from None
    ident = (st.st_dev, st.st_ino)
    name = os.path.realpath(path)
    with _stores_lock:
        store = _stores.get(name)
        if store is None or store.ident != ident:
            # an older store of a replaced file closes when its last user lets go of it
            store = _stores[name] = _Store(Path(name), ident)
        _stores.move_to_end(name)
        while len(_stores) > _MAX_STORES:
            _stores.popitem(last=False)
        return store


class VaultGateway(Gateway):
    """Tokenise cards into an encrypted local SQLite vault; ``submit`` returns status ``tokenised``."""

    name = "vault"

    def __init__(self, path: Union[None, str, os.PathLike] = None, *, key: Optional[bytes] = None,
                 key_file: Union[None, str, os.PathLike] = None, key_env: str = KEY_ENV):
        self.path = Path(path or os.environ.get(PATH_ENV) or DEFAULT_VAULT_PATH)
        key_bytes = load_key(key, key_file, key_env)
        self._aead = AESGCM(key_bytes)
        self._key_check = hmac.new(key_bytes, _KEY_CHECK_LABEL, hashlib.sha256).digest()
        del key_bytes
        self._lock = threading.Lock()
        self._open()

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """This vault file's shared connection (see :class:`_Store`), one operation at a time, in one
        transaction: committed on success, rolled back on an exception."""
        store = _store(self.path)
        with store.lock:
            with store.conn:
                yield store.conn

    def _open(self) -> None:
        if not self.path.exists():
            try:  # create it private before SQLite does, so it never exists world-readable
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                pass
            except OSError as exc:
                raise GatewayConfigError(f"cannot create vault {os.fspath(self.path)!r} ({exc.strerror})") \
                    from None
        try:
            with self._db() as conn:
                conn.executescript(_SCHEMA)
                row = conn.execute("SELECT value FROM meta WHERE name = 'key_check'").fetchone()
                if row is None:
                    conn.execute("INSERT INTO meta (name, value) VALUES ('key_check', ?)", (self._key_check,))
                elif not hmac.compare_digest(bytes(row[0]), self._key_check):
                    raise VaultKeyError(f"the vault key does not match the key {os.fspath(self.path)!r} "
                                        "was created with (key check failed)")
        except sqlite3.DatabaseError as exc:
            raise GatewayConfigError(f"cannot open vault {os.fspath(self.path)!r} ({type(exc).__name__})") \
                from None

    def submit(self, request: PaymentRequest) -> GatewayResult:
        card = request.card
        if card is None or card.wiped:
            raise GatewayError("the vault needs a card number")
        with self._db() as conn:
            row = conn.execute("SELECT token FROM cards WHERE idempotency_key = ?",
                               (request.idempotency_key,)).fetchone()
            if row is not None:  # a repeated request: same token, nothing stored twice
                logger.info("vault: idempotent repeat, returning existing token")
                return GatewayResult("tokenised", token=row[0], message="already tokenised", gateway=self.name)
            token = new_token()
            nonce = os.urandom(12)
            plaintext = bytearray(card.pan.encode() + b"|" + (card.expiry or "").encode())
            try:
                ciphertext = self._aead.encrypt(nonce, bytes(plaintext), _AAD_PREFIX + token.encode())
            finally:
                wipe(plaintext)
            conn.execute(
                "INSERT INTO cards (token, idempotency_key, created, brand, last4, nonce, ciphertext, amount,"
                " currency, reference) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (token, request.idempotency_key, time.time(), card.brand, card.last4, nonce, ciphertext,
                 request.amount, request.currency, request.reference))
        logger.info("vault: stored %s card under a new token", card.brand)
        return GatewayResult("tokenised", token=token, message="card stored in vault", gateway=self.name)

    def detokenise(self, token: str) -> CardDetails:
        """The card number and expiry stored under ``token`` (the security code is never stored).

        Raises :class:`TokenNotFound` or :class:`VaultKeyError` (wrong key or altered record).
        """
        with self._db() as conn:
            row = conn.execute("SELECT nonce, ciphertext FROM cards WHERE token = ?", (token,)).fetchone()
        if row is None:
            raise TokenNotFound("no card stored under this token")
        try:
            plaintext = bytearray(self._aead.decrypt(bytes(row[0]), bytes(row[1]), _AAD_PREFIX + token.encode()))
        except InvalidTag:
            raise VaultKeyError("cannot decrypt this record: wrong vault key or the record was altered") from None
        try:
            pan, _, expiry = bytes(plaintext).partition(b"|")
            return CardDetails(pan, expiry or None)
        finally:
            wipe(plaintext)

    def delete(self, token: str) -> bool:
        """Remove a card (its pages are zeroed: secure_delete, and the write-ahead log that still held the
        old page is checkpointed and truncated).  True if it existed."""
        with self._db() as conn:
            found = conn.execute("DELETE FROM cards WHERE token = ?", (token,)).rowcount > 0
        if found:
            store = _store(self.path)
            with store.lock:
                busy = store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy and busy[0]:  # another process is reading: its next checkpoint overwrites the old page
                logger.info("vault: the log could not be truncated now (another reader); it will be")
        return found

    def count(self) -> int:
        with self._db() as conn:
            return conn.execute("SELECT COUNT(*) FROM cards").fetchone()[0]
