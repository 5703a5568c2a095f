"""SIGKILL the collector at random points: each resume loses at most the chunk in flight, never earlier data."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from pnn.store import DataStore

COLLECTOR = """
import sys, time, torch
sys.path.insert(0, {tests!r})
from toy_systems import LeakyTanh
from pnn.twin import collect
from pnn.store import DataStore

class Slow(LeakyTanh):
    def __call__(self, drive):
        time.sleep(0.01)  # a board takes time to measure; gives the kill somewhere to land
        return super().__call__(drive)

store = DataStore(sys.argv[1], meta={{"system": "toy", "seed": 7}})
collect(Slow(8), {n}, seed=7, chunk={chunk}, store=store, show_progress=False)
"""
N, CHUNK = 1600, 8


def start(root: Path) -> subprocess.Popen:
    script = COLLECTOR.format(tests=str(Path(__file__).parent), n=N, chunk=CHUNK)
    return subprocess.Popen([sys.executable, "-c", script, str(root)], stderr=subprocess.PIPE)


def chunk_count(root: Path) -> int:
    return len(list(root.glob("chunk-*.npz"))) if root.exists() else 0


def test_twenty_random_sigkills_then_resume_leave_a_verified_complete_store(tmp_path):
    rng = random.Random(1234)
    root = tmp_path / "store"
    kills = 0
    while kills < 20:
        before = chunk_count(root)
        proc = start(root)
        deadline = time.monotonic() + 60
        while chunk_count(root) <= before and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)  # wait until it is really collecting, then kill it mid-stream
        time.sleep(rng.uniform(0, 0.15))
        if proc.poll() is not None:
            assert proc.returncode == 0, proc.stderr.read().decode()
            break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        store = DataStore(root)  # reopening clears the partial chunk that was in flight
        assert store.verify() == store.n_chunks * CHUNK  # whole chunks only, each passing its checksum
    assert kills == 20, "the collector finished before it could be killed 20 times; make it slower"
    proc = start(root)
    assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()

    drives, responses = DataStore(root).load()
    assert drives.shape == (N, 8) and DataStore(root).verify() == N
    # The same collection without crashes gives exactly the same data: nothing lost, nothing doubled.
    reference = tmp_path / "reference"
    assert start(reference).wait(timeout=120) == 0
    ref_drives, ref_responses = DataStore(reference).load()
    np.testing.assert_array_equal(drives, ref_drives)
    np.testing.assert_array_equal(responses, ref_responses)
