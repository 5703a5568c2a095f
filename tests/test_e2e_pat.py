"""End to end: PAT training of a 2-layer physical network on firmware boards under real MicroPython.

(i) two boards over ptys, trained with `pnn.train.train("pat")`; (ii) three boards over MQTT through a
real mosquitto, trained with the pipelined trainer. Each board has its own seed and its own twin,
fitted on the rows that board measured. Mid-epoch one board is killed (SIGKILL) and later started
again; training must finish, and every example must be measured exactly once: the rows the trainer
asked for, the rows the boards delivered (per-board counters) and the rows in the data store agree.
"""

from __future__ import annotations

import threading

import torch
from _fixtures import board_file, restart

from pnn.data import Task, digits
from pnn.devices import DevicePool
from pnn.pipeline import PipelineConfig, fit_twins, train_pipelined
from pnn.store import DataStore
from pnn.train import TrainConfig, train

LINK = "n_in=64&n_out=16&rate=20000&timeout=0.3&heartbeat=0.2&retries=10&reconnect=10"
TWIN_ROWS = 360
TRAIN = TrainConfig(depth=2, epochs=2, batch_size=24, lr=0.03, seed=0)


def small_digits() -> Task:
    t = digits()
    return Task("digits", t.x_train[:144], t.y_train[:144], t.x_test[:48], t.y_test[:48], t.classes)


class Saboteur:
    """The pool as the trainer sees it, counting rows; at call `kill_at` it kills a board mid-call
    and at `restart_at` starts it again (in the background, while training goes on)."""

    def __init__(self, pool: DevicePool, victim, restart_args: list[str], ready: str, kill_at: int) -> None:
        self.pool, self.n_in, self.n_out = pool, pool.n_in, pool.n_out
        self.victim, self.restart_args, self.ready = victim, restart_args, ready
        self.kill_at, self.restart_at, self.calls, self.rows = kill_at, kill_at + 4, 0, 0
        self.threads: list[threading.Thread] = []
        self.samples_at_restart: int | None = None

    def run_with_sources(self, drive: torch.Tensor):
        self.calls += 1
        if self.calls == self.kill_at:
            self.threads.append(threading.Timer(0.01, self.victim.proc.kill))  # lands during this call
        elif self.calls == self.restart_at:
            self.threads.append(threading.Thread(target=restart, args=(self.victim, *self.restart_args),
                                                 kwargs={"ready": self.ready}))
        if self.calls in (self.kill_at, self.restart_at):
            self.threads[-1].start()
        response, sources = self.pool.run_with_sources(drive)
        assert response.shape == (len(drive), self.n_out) and len(sources) == len(drive)
        self.rows += len(drive)
        return response, sources

    def __call__(self, drive: torch.Tensor) -> torch.Tensor:
        return self.run_with_sources(drive)[0]

    def join(self) -> None:
        for t in self.threads:
            t.join(30)


def check_accounting(pool: DevicePool, saboteur: Saboteur, store: DataStore, twin_rows: int, victim_id: str) -> None:
    stats = pool.stats()
    delivered = sum(s["samples"] for s in stats.values())
    assert delivered == saboteur.rows + twin_rows, "every row measured exactly once, none double-counted"
    pool.flush()
    assert store.verify() == saboteur.rows + twin_rows, "every measured row is in the store"
    _, response = store.load()
    assert len(response) == delivered
    victim = stats[victim_id]
    assert victim["reconnects"] >= 1 and victim["connected"], "the killed board came back"


def test_pat_on_two_serial_boards_with_one_killed_mid_epoch(firmware_serial, tmp_path) -> None:
    paced = board_file(tmp_path, paced=True)
    boards = [firmware_serial(seed=seed, cable=True, board=paced) for seed in (11, 12)]
    store = DataStore(tmp_path / "pairs")
    with DevicePool([f"serial://{b.host_path}?{LINK}" for b in boards], store=store) as pool:
        twins = fit_twins(pool, TWIN_ROWS, epochs=40, hidden=(64, 64), show_progress=False)
        assert sorted(twins) == sorted(pool.ids), "one twin per board, each from its own rows"
        victim = boards[1]
        saboteur = Saboteur(pool, victim, ["--serial", victim.path, "--seed", "12", "--board", paced], "serving",
                            kill_at=5)
        result = train("pat", small_digits(), saboteur, twins, TRAIN, show_progress=False)
        saboteur.join()
        assert len(result.history) == TRAIN.epochs and result.test_accuracy > 0.2
        check_accounting(pool, saboteur, store, TWIN_ROWS, pool.ids[1])


def test_pipelined_pat_on_three_mqtt_boards_with_one_killed_mid_epoch(mosquitto_broker, firmware_mqtt, tmp_path) -> None:
    paced = board_file(tmp_path, paced=True)
    host, port = tuple(mosquitto_broker)
    boards = [firmware_mqtt(mosquitto_broker, f"e2e-{seed}", seed=seed, extra=("--board", paced)) for seed in (21, 22, 23)]
    store = DataStore(tmp_path / "pairs")
    with DevicePool([f"mqtt://{host}:{port}/{b.device_id}?{LINK}" for b in boards], store=store) as pool:
        twins = fit_twins(pool, TWIN_ROWS, epochs=40, hidden=(64, 64), show_progress=False)
        assert sorted(twins) == sorted(pool.ids)
        victim = boards[0]
        args = ["--mqtt", f"{host}:{port}", "--id", victim.device_id, "--seed", "21", "--board", paced]
        saboteur = Saboteur(pool, victim, args, "online as", kill_at=5)
        result = train_pipelined(small_digits(), saboteur, twins, TRAIN, PipelineConfig(pipeline=1, refine_every=4),
                                 show_progress=False)
        saboteur.join()
        assert len(result.history) == TRAIN.epochs and result.test_accuracy > 0.2
        assert {row["max_staleness"] for row in result.history} == {1}
        check_accounting(pool, saboteur, store, TWIN_ROWS, pool.ids[0])
