# SPDX-License-Identifier: GPL-2.0-or-later
"""Background worker pools: an idle thread keeps no reference to the task it last ran."""
from __future__ import annotations

import gc
import time
import weakref

from dtmfguard.capture.worker import WorkerPool


def test_idle_worker_releases_its_last_task():
    class Task:  # stands in for a payment session holding a (wiped) card request
        ran = False

        def run(self):
            self.ran = True

    pool = WorkerPool("test-release", 1)
    try:
        task = Task()
        ref = weakref.ref(task)
        pool.submit(task.run)
        deadline = time.monotonic() + 5
        while not task.ran and time.monotonic() < deadline:
            time.sleep(0.01)
        assert task.ran
        del task
        deadline = time.monotonic() + 5  # until the worker is back in queue.get(), holding nothing
        while ref() is not None and time.monotonic() < deadline:
            gc.collect()
            time.sleep(0.01)
        assert ref() is None
    finally:
        pool.shutdown()
