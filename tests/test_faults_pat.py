"""PAT training on firmware boards (real MicroPython) through faulty links, against fault-free runs.

Each test trains the same tiny 2-layer network twice on boards of the same seed: once on a clean
link and once through injected faults (1e-3 byte corruption with 1% dropped and 1% duplicated
frames, over a pty cable and over MQTT), a board killed and restarted mid-epoch, or the broker
restarted mid-epoch. Every (drive, response) pair of both runs is recorded; they must be identical,
row for row and bit for bit: no sample lost, duplicated, corrupted or measured twice (a RUN run a
second time would shift the board's noise stream and change every later response).

Boards with ADC noise are served one request at a time (window=1), so the board's noise stream
sees the same RUNs in the same order. Where requests overlap (window=3) or a board restarts with a
fresh noise stream, the board is noise-free and settles 128 ticks before each example, so each
response depends on its drive alone.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _fixtures import board_file, restart

from pnn.data import Task, digits
from pnn.devices import connect
from pnn.store import DataStore
from pnn.testing.faults import Faults, FaultyCable, Interrupter, faulty_device
from pnn.train import TrainConfig, train
from pnn.twin import fit_twin

LINK = "n_in=16&n_out=8&chunk=4&timeout=0.25&retries=30&heartbeat=0.5&reconnect=20"
NOISY = LINK + "&window=1&settle=8"  # a board with ADC noise: one request at a time
QUIET = LINK + "&window=3&settle=128"  # a noise-free board: its response depends on the drive alone
ACCEPTANCE = Faults(corrupt=1e-3, drop=0.01, duplicate=0.01, seed=4)
TRAIN = TrainConfig(depth=2, epochs=1, batch_size=16, lr=0.03, seed=0)


@pytest.fixture(scope="module")
def twin() -> torch.nn.Module:
    """A twin of the electronic layer fitted on the host's simulator (PAT only needs its gradients)."""
    with connect("sim://electronic?n_in=16&n_out=8&noise=off") as sim:
        return fit_twin(sim, 256, epochs=30, hidden=(32, 32), show_progress=False)


def tiny_task() -> Task:
    """48 training and 16 test digits, pooled to 4x4 pixels: one pixel per drive sample of n_in=16."""
    t = digits()

    def pool(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.avg_pool2d(x.view(-1, 1, 8, 8), 2).flatten(1)

    return Task("digits", pool(t.x_train[:48]), t.y_train[:48], pool(t.x_test[:16]), t.y_test[:16], t.classes)


def run_pat(system, twin, device=None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Train with PAT on `system`; returns every measured (drive, response) pair and the board's stats.

    `device` is the Device that records to the store (the system itself unless it is a wrapper).
    """
    device = device or system
    result = train("pat", tiny_task(), system, twin, TRAIN, show_progress=False)
    assert len(result.history) == TRAIN.epochs
    device.flush()
    store = device._recorder.store
    assert store.verify() == len(store)  # every chunk intact on disk
    drive, response = store.load()
    return drive, response, device.stats()


def assert_same_samples(clean: tuple, faulty: tuple) -> None:
    (d0, r0, s0), (d1, r1, s1) = clean, faulty
    assert d1.shape == d0.shape and r1.shape == r0.shape, "no sample lost or duplicated"
    np.testing.assert_array_equal(d1, d0)  # the same drives were asked for, in the same order...
    np.testing.assert_array_equal(r1, r0)  # ...and measured exactly once each, intact
    assert s1["samples"] == s0["samples"] == len(d0)


def test_pat_over_a_faulty_pty_cable_measures_every_sample_once(firmware_serial, twin, tmp_path) -> None:
    clean_board, faulty_board = firmware_serial(seed=5, cable=True), firmware_serial(seed=5)
    with connect(f"serial://{clean_board.host_path}?{NOISY}", store=DataStore(tmp_path / "clean")) as board:
        clean = run_pat(board, twin)
    with FaultyCable(faulty_board.fd, ACCEPTANCE, tmp_path) as cable:
        with connect(f"serial://{cable.path}?{NOISY}", store=DataStore(tmp_path / "faulty")) as board:
            faulty = run_pat(board, twin)
        counts = cable.counts()
    assert_same_samples(clean, faulty)
    assert counts["to_board"]["corrupted_frames"] + counts["to_host"]["corrupted_frames"] > 0, counts
    assert faulty[2]["errors"] > 0  # the firmware's BAD_CRC / BAD_FRAME answers to what the cable damaged
    assert faulty[2]["retries"] > 0


def test_pat_over_mqtt_with_lost_duplicated_and_reordered_messages(
    mosquitto_broker, firmware_mqtt, twin, tmp_path
) -> None:
    quiet = board_file(tmp_path, adc_noise_lsb=0)
    for name in ("clean", "faulty"):
        firmware_mqtt(mosquitto_broker, name, seed=6, extra=("--board", quiet))
    host, port = tuple(mosquitto_broker)
    with connect(f"mqtt://{host}:{port}/clean?{QUIET}", store=DataStore(tmp_path / "clean")) as board:
        clean = run_pat(board, twin)
    faults = Faults(corrupt=1e-3, drop=0.01, duplicate=0.01, reorder=0.02, delay=0.02, seed=2)
    with faulty_device(
        f"mqtt://{host}:{port}/faulty?{QUIET}", faults, store=DataStore(tmp_path / "faulty")
    ) as board:
        faulty = run_pat(board, twin)
        counts = board.aio.transport.counts()
    assert_same_samples(clean, faulty)
    # (~100 frames each way: 1% drops and duplicates may or may not strike; test_faults.py makes sure)
    assert counts["to_board"]["corrupted_frames"] + counts["to_host"]["corrupted_frames"] > 0, counts
    # re-sends: by a timer, or at once (a damaged frame, or a tail probe's PONG overtaking a lost RUN)
    assert faulty[2]["retries"] + faulty[2]["fast_resends"] > 0, faulty[2]
    assert faulty[2]["bad_frames"] >= counts["to_host"]["corrupted_frames"]


def test_a_board_power_cycled_mid_epoch_loses_and_repeats_nothing(firmware_serial, twin, tmp_path) -> None:
    quiet = board_file(tmp_path, adc_noise_lsb=0, paced=True)  # paced: the power goes inside a RUN
    clean_board, victim = (
        firmware_serial(seed=7, cable=True, board=quiet),
        firmware_serial(seed=7, board=quiet),
    )
    with connect(f"serial://{clean_board.host_path}?{QUIET}", store=DataStore(tmp_path / "clean")) as board:
        clean = run_pat(board, twin)
    args = ["--serial", victim.path, "--seed", "7", "--board", quiet]

    def power_cycle() -> None:  # its USB port vanishes with the power; it boots afresh (SIGKILL, start)
        cable.unplug(0.2)
        restart(victim, *args, ready="serving")

    with FaultyCable(victim.fd, Faults(), tmp_path) as cable:
        with connect(f"serial://{cable.path}?{QUIET}", store=DataStore(tmp_path / "faulty")) as board:
            saboteur = Interrupter(board, {3: power_cycle})
            faulty = run_pat(saboteur, twin, device=board)
            saboteur.join()
    assert_same_samples(clean, faulty)
    assert faulty[2]["reconnects"] >= 1 and saboteur.rows == len(clean[0])
    assert victim.proc.poll() is None and victim.stderr().count("serving") == 2


def test_a_broker_restart_mid_epoch_loses_and_repeats_nothing(
    mosquitto_broker, firmware_mqtt, twin, tmp_path
) -> None:
    paced = board_file(tmp_path, paced=True)
    for name in ("clean", "victim"):
        firmware_mqtt(mosquitto_broker, name, seed=8, extra=("--board", paced))
    host, port = tuple(mosquitto_broker)
    with connect(f"mqtt://{host}:{port}/clean?{NOISY}", store=DataStore(tmp_path / "clean")) as board:
        clean = run_pat(board, twin)
    with connect(f"mqtt://{host}:{port}/victim?{NOISY}", store=DataStore(tmp_path / "faulty")) as board:
        saboteur = Interrupter(board, {3: mosquitto_broker.restart})
        faulty = run_pat(saboteur, twin, device=board)
        saboteur.join()
    assert_same_samples(clean, faulty)
    assert faulty[2]["reconnects"] >= 1
