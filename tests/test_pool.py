"""DevicePool over in-process simulated boards: order, sources, failover, per-board twins in PAT."""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

import pnn
from pnn.devices import DevicePool, connect, connect_all
from pnn.link.errors import OutageError
from pnn.store import DataStore

BOARD = "sim://electronic?seed={seed}&n_in=32&n_out=8&noise=off&substeps=1"
CODES = 1.5 / 4095  # see test_devices: responses agree to within about an ADC code


@pytest.fixture(scope="module")
def references() -> dict[int, pnn.devices.Device]:
    """One separate Device per seed: what each board measures on its own."""
    devices = {seed: connect(BOARD.format(seed=seed)) for seed in range(3)}
    yield devices
    for d in devices.values():
        d.close()


def check_rows(response: torch.Tensor, sources: list[str], drive: torch.Tensor, pool: DevicePool, refs) -> None:
    """Every row measured once, by a pool board, with that board's own physics."""
    assert len(sources) == len(drive) and set(sources) <= set(pool.ids)
    for seed, board_id in enumerate(pool.ids):
        rows = [i for i, s in enumerate(sources) if s == board_id]
        if rows:
            assert torch.allclose(response[rows], refs[seed](drive[rows]), atol=CODES), f"rows of {board_id}"


def test_rows_come_back_in_order_with_the_board_that_measured_each(references) -> None:
    with DevicePool([BOARD.format(seed=s) for s in range(3)]) as pool:
        assert isinstance(pool, pnn.SourcedSystem) and (pool.n_in, pool.n_out) == (32, 8)
        drive = torch.rand(90, 32, generator=torch.Generator().manual_seed(0))
        response, sources = pool.run_with_sources(drive)
        check_rows(response, sources, drive, pool, references)
        assert set(sources) == set(pool.ids), "a batch this size is spread over every board"
        stats = pool.stats()
        assert sum(s["samples"] for s in stats.values()) == 90


def test_chunks_of_a_board_that_drops_out_mid_batch_are_rerun_on_the_others(references) -> None:
    urls = [BOARD.format(seed=s) + "&realtime=1&max_batch=4" for s in range(3)]
    with DevicePool(urls, patience=5) as pool:
        victim = pool.aio.devices[1]
        threading.Timer(0.03, victim.transport.unplug, args=(60.0,)).start()  # never comes back
        drive = torch.rand(120, 32, generator=torch.Generator().manual_seed(1))
        response, sources = pool.run_with_sources(drive)  # ~0.2 s of board time per board
        check_rows(response, sources, drive, pool, references)
        assert pool.aio.rerun_rows > 0, "the board had a chunk in flight when it was unplugged"
        assert sources.count(pool.ids[1]) < 40, "the unplugged board cannot have done its share"
        assert not victim.connected
        # and the next batch runs on the two that are left
        response, sources = pool.run_with_sources(drive[:20])
        assert pool.ids[1] not in sources
        check_rows(response, sources, drive[:20], pool, references)


def test_a_pool_with_every_board_gone_says_so() -> None:
    urls = [BOARD.format(seed=s) for s in range(2)]
    with DevicePool(urls, patience=0.3) as pool:
        for device in pool.aio.devices:
            device.transport.unplug(60.0)
        with pytest.raises(OutageError, match="every device in the pool stayed unavailable for 0.3 s"):
            pool(torch.rand(10, 32))


def test_pool_refuses_boards_of_different_shapes_and_repeats() -> None:
    with pytest.raises(ValueError, match="disagree on"):
        DevicePool([BOARD.format(seed=0), "sim://electronic?seed=1&n_in=16&n_out=8"])
    with pytest.raises(ValueError, match="appears twice"):
        DevicePool([BOARD.format(seed=0), BOARD.format(seed=0) + "&window=2"])
    with pytest.raises(ValueError, match="list of Devices or URLs"):
        DevicePool(BOARD.format(seed=0))  # type: ignore[arg-type]


def test_concurrent_batches_share_the_boards(references, tmp_path) -> None:
    store = DataStore(tmp_path / "pool")
    with connect_all([BOARD.format(seed=s) for s in range(2)], store=store) as pool:
        assert isinstance(pool, DevicePool)
        drives = [torch.rand(n, 32, generator=torch.Generator().manual_seed(n)) for n in (33, 17, 50)]
        futures = [pool.submit(d) for d in drives]  # all in flight at once
        for drive, future in zip(drives, futures, strict=True):
            response, sources = future.result()
            check_rows(response, sources, drive, pool, references)
    stored_drive, _ = store.load()
    assert len(stored_drive) == 100  # every measured row is kept, each once


class Scaled(nn.Module):
    """A linear 'twin' whose gradient identifies it: d(sum y)/dx = scale for every input."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w * self.scale * x.reshape(len(x), 8, 4).sum(-1)


class Spy:
    """Passes a pool through and remembers which board measured each row."""

    def __init__(self, pool: DevicePool) -> None:
        self.pool, self.n_in, self.n_out, self.sources = pool, pool.n_in, pool.n_out, []

    def run_with_sources(self, drive: torch.Tensor):
        response, self.sources = self.pool.run_with_sources(drive)
        return response, self.sources

    def __call__(self, drive: torch.Tensor) -> torch.Tensor:
        return self.run_with_sources(drive)[0]


def test_physical_layer_takes_each_rows_gradient_from_its_own_boards_twin() -> None:
    with DevicePool([BOARD.format(seed=s) for s in range(3)]) as pool:
        scale = {board_id: float(i + 1) for i, board_id in enumerate(pool.ids)}
        spy = Spy(pool)
        layer = pnn.PhysicalLayer(spy, {board_id: Scaled(k) for board_id, k in scale.items()})
        drive = torch.rand(60, 32, requires_grad=True)
        layer(drive).sum().backward()
        expected = torch.tensor([scale[s] for s in spy.sources])
        assert len(set(spy.sources)) == 3
        assert torch.equal(drive.grad, expected[:, None].expand(60, 32))
