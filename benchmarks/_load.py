# SPDX-License-Identifier: GPL-2.0-or-later
"""Background load for the benchmarks: busy-loop processes and disk writers, started and stopped together.

A load is written as the benchmarks' ``--load`` options take it: ``N`` busy loops, ``Nio`` disk writers, or
both joined by ``+`` (``2+1io``); ``0`` or an empty text is no load.  Used by benchmarks/payment_latency.py
and benchmarks/vault_store.py.  Benchmark tooling only: nothing in the runtime imports it.

Usage::

    with running(Load("2+1io"), tmp):
        ...  # measure
"""
from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

__all__ = ["Load", "start_load", "stop_load", "running"]

#: a disk writer: 256 MB per file, rewritten without end, never synced (the page cache fills with dirty data, as
#: when tests write recordings and corpora: every fsync on the same file system then waits for it)
_WRITER = """
import os, sys
block = os.urandom(1 << 20)
while True:
    with open(sys.argv[1], "wb") as f:
        for _ in range(256):
            f.write(block)
"""
_BUSY = "while True: pass"


class Load:
    """``N`` busy loops, ``Nio`` disk writers, or both (``2+1io``); ``io`` alone is one writer."""

    def __init__(self, text: str):
        self.text, self.cpu, self.io = text, 0, 0
        for part in text.split("+"):
            part = part.strip()
            try:
                if part.endswith("io"):
                    self.io += int(part[:-2] or 1)
                elif part:
                    self.cpu += int(part)
            except ValueError:
                raise ValueError(f"load {text!r}: expected N, Nio or N+Mio") from None
        if self.cpu < 0 or self.io < 0:
            raise ValueError(f"load {text!r}: negative count")

    @classmethod
    def writers(cls, n: int) -> "Load":
        """``n`` disk writers and no busy loop."""
        return cls(f"{n}io")

    def __str__(self) -> str:
        return f"{self.cpu} busy loop(s), {self.io} disk writer(s)"


def start_load(load: Load, tmp: Path) -> list:
    """Start ``load``'s processes (the writers write ``tmp/io-N.bin``); give the list to :func:`stop_load`."""
    tmp.mkdir(parents=True, exist_ok=True)
    procs = [subprocess.Popen([sys.executable, "-c", _BUSY]) for _ in range(load.cpu)]
    try:
        for i in range(load.io):
            procs.append(subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp / f"io-{i}.bin")]))
    except BaseException:
        stop_load(procs, tmp)
        raise
    return procs


def stop_load(procs: list, tmp: Path) -> None:
    """Kill and reap the processes :func:`start_load` started and remove the writers' files."""
    for proc in procs:
        proc.kill()
        proc.wait()
    for f in tmp.glob("io-*.bin"):
        f.unlink()


@contextlib.contextmanager
def running(load: Load, tmp: Path):
    """``load`` runs inside the ``with`` block and is stopped (files removed) however it ends."""
    procs = start_load(load, tmp)
    try:
        yield procs
    finally:
        stop_load(procs, tmp)
