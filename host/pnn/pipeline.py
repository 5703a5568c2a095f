"""Pipelined PAT: the boards measure batch k+1 while the host does batch k's backward pass and step.

Plain PAT leaves the hardware idle while the host computes the twin's vector-Jacobian products and
the optimizer step. With `pipeline=p`, a hardware thread runs the physical forward pass of the
batches up to k+p (each on a snapshot of the parameters taken when it was launched) while the host
thread trains on batch k. The host then *replays* batch k with the same snapshot: the encoders
reproduce the drives the boards saw, each physical layer returns what they measured, and the
twins' vjp at those drives gives the gradient, which is applied to the current parameters. So a
gradient is p steps stale (PipeDream's weight stashing: the same weights for a batch's forward and
backward), and `pipeline=0` is exactly plain PAT.

Every (drive, response) pair training measures is real data: `TwinRefiner` refines each board's
twin from its own recent pairs as training goes (online), and a DataStore keeps them all.
`PipelinedStep` is the trainer, a step function on `pnn.train.fit`'s one epoch loop.
"""

from __future__ import annotations

import concurrent.futures
import copy
import math
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .data import Task
from .engine import Result, Step, run_step
from .nets import PhysicalNet, TrainConfig, build
from .pat import PhysicalLayer, TwinSpec
from .store import Recorder
from .system import PhysicalSystem, as_twins, measure
from .twin import Twin, nrmse
from .twin import fit_twins as _fit_twins


@dataclass
class PipelineConfig:
    """How far the hardware runs ahead, and how the twins learn online.

    Attributes:
        pipeline: batches the hardware runs ahead of the host (0: plain PAT, 1: one-step-stale).
        refine_every: training steps between online twin refinements (0: never).
        refine_steps: optimizer steps per refinement, per twin.
        refine_lr: learning rate of the refinement (small: the twin should move, not jump).
        refine_window: most recent pairs per board that a refinement learns from.
        refine_batch: pairs per refinement step.
        micro_batches: cut each batch's hardware pass into this many concurrent micro-batches, so
            the boards need not wait at layer boundaries (1: off).
    """

    pipeline: int = 1
    refine_every: int = 0
    refine_steps: int = 10
    refine_lr: float = 3e-4
    refine_window: int = 4096
    refine_batch: int = 128
    micro_batches: int = 1

    def __post_init__(self) -> None:
        if self.micro_batches < 1:
            raise ValueError(f"PipelineConfig.micro_batches must be >= 1, got {self.micro_batches}")
        for name in ("pipeline", "refine_every", "refine_steps", "refine_window", "refine_batch"):
            if getattr(self, name) < 0:
                raise ValueError(f"PipelineConfig.{name} must be >= 0, got {getattr(self, name)}")


@dataclass
class _Trace:
    """One batch's physical forward pass: per layer, the drives, the measured responses, the sources."""

    layers: list[tuple[torch.Tensor, torch.Tensor, list[str]]] = field(default_factory=list)
    launched_at_step: int = 0


def _measure(system: PhysicalSystem, drive: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
    response, sources = measure(system, drive)
    return response, sources if sources is not None else [""] * len(drive)


class _Recording:
    """A layer body for the hardware thread: measure on the system, remember what was measured."""

    def __init__(self, system: PhysicalSystem, trace: _Trace) -> None:
        self.system, self.trace = system, trace

    def __call__(self, drive: torch.Tensor) -> torch.Tensor:
        drive = drive.detach().clone()
        response, sources = _measure(self.system, drive)
        self.trace.layers.append((drive, response, sources))
        return response


class _Replay:
    """A 'system' that returns a trace's measurements in order, for the host's replay of a batch."""

    def __init__(self, system: PhysicalSystem, trace: _Trace) -> None:
        self.n_in, self.n_out = system.n_in, system.n_out
        self._layers = iter(trace.layers)

    def run_with_sources(self, drive: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
        seen, response, sources = next(self._layers)
        # Same snapshot, same inputs, same ops: a mismatch would mean the replay is not this batch.
        if seen.shape != drive.shape or not torch.allclose(seen, drive, rtol=0, atol=1e-6):
            raise RuntimeError("replayed drive differs from the drive the hardware saw")
        return response.clone(), sources  # a copy: autograd attaches the layer's graph to what it returns

    def __call__(self, drive: torch.Tensor) -> torch.Tensor:
        return self.run_with_sources(drive)[0]


class TwinRefiner:
    """Online refinement of each board's twin from the pairs training measures on that board.

    Before each refinement, the twin's NRMSE on the pairs that arrived since the last one (never
    trained on) is recorded in `history`: an honest running estimate of the twin's error where
    training actually drives the boards.
    """

    def __init__(self, twins: Mapping[str, nn.Module], cfg: PipelineConfig) -> None:
        self.twins, self.cfg = dict(twins), cfg
        self._pairs: dict[str, deque[tuple[torch.Tensor, torch.Tensor]]] = {s: deque() for s in self.twins}
        self._fresh: dict[str, int] = dict.fromkeys(self.twins, 0)
        self._opts = {s: torch.optim.Adam(t.parameters(), lr=cfg.refine_lr) for s, t in self.twins.items()}
        self.history: list[dict[str, float]] = []

    def add(self, drive: torch.Tensor, response: torch.Tensor, sources: list[str]) -> None:
        for source in set(sources):
            key = source if source in self.twins else ""
            if key not in self.twins:
                continue
            rows = [i for i, s in enumerate(sources) if s == source]
            self._pairs[key].append((drive[rows], response[rows]))
            self._fresh[key] += len(rows)
            while sum(len(d) for d, _ in self._pairs[key]) - len(self._pairs[key][0][0]) >= self.cfg.refine_window:
                self._pairs[key].popleft()

    def refine(self, gen: torch.Generator) -> dict[str, float]:
        """Score each twin on its fresh pairs, then take `refine_steps` steps on its recent pairs."""
        scores = {}
        for source, twin in self.twins.items():
            if not self._pairs[source]:
                continue
            drive = torch.cat([d for d, _ in self._pairs[source]])
            response = torch.cat([r for _, r in self._pairs[source]])
            fresh = min(self._fresh[source], len(drive))
            with torch.no_grad():
                scores[source], _ = nrmse(twin(drive[-fresh:]), response[-fresh:]) if fresh > 1 else (math.nan, None)
            self._fresh[source] = 0
            twin.requires_grad_(True)
            scale = twin.y_std if hasattr(twin, "y_std") else 1.0
            with torch.enable_grad():
                for _ in range(self.cfg.refine_steps):
                    idx = torch.randint(len(drive), (min(self.cfg.refine_batch, len(drive)),), generator=gen)
                    loss = ((twin(drive[idx]) - response[idx]) / scale).pow(2).mean()
                    self._opts[source].zero_grad()
                    loss.backward()
                    self._opts[source].step()
            twin.requires_grad_(False)
        if scores:
            self.history.append(scores)
        return scores

    def state_dict(self) -> dict[str, Any]:
        """The twins, their optimizers and the pair windows: what a resumed run needs to refine the same way."""
        return {"twins": {s: t.state_dict() for s, t in self.twins.items()},
                "opts": {s: o.state_dict() for s, o in self._opts.items()},
                "pairs": {s: [list(p) for p in q] for s, q in self._pairs.items()},
                "fresh": dict(self._fresh), "history": list(self.history)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for s, twin in self.twins.items():
            twin.load_state_dict(state["twins"][s])
            self._opts[s].load_state_dict(state["opts"][s])
            self._pairs[s] = deque((d, r) for d, r in state["pairs"][s])
        self._fresh, self.history = dict(state["fresh"]), list(state["history"])


def fit_twins(system: PhysicalSystem, n_samples: int, *, seed: int = 0, chunk: int = 256, **options: Any
              ) -> dict[str, Twin]:
    """One twin per board of a pool, each fitted on the rows that board measured.

    Random drives go through the pool `chunk` at a time (so every board works at once); the rows
    are grouped by the board that measured them. `options` go to `pnn.twin.fit` (hidden, epochs,
    show_progress, ...). A system without sources gets one twin under the id "".
    """
    return _fit_twins(system, n_samples, seed=seed, chunk=chunk, **options)


def _snapshot(net: PhysicalNet) -> PhysicalNet:
    """A frozen copy of the network's parameters (without its layer bodies, which hold the system)."""
    bodies, net.bodies = net.bodies, []
    try:
        return copy.deepcopy(net)
    finally:
        net.bodies = bodies


def _busy_seconds(system: PhysicalSystem) -> tuple[float, int] | None:
    """Total board time so far and the number of boards, from the system's stats (None: no stats)."""
    stats = getattr(system, "stats", None)
    if stats is None:
        return None
    s = stats()
    per_device = [v for v in s.values() if isinstance(v, dict)] if "busy_s" not in s else [s]
    return sum(float(d["busy_s"]) for d in per_device), len(per_device)


def _forward_on_hardware(snap: PhysicalNet, system: PhysicalSystem, x: torch.Tensor, step: int,
                         workers: concurrent.futures.ThreadPoolExecutor | None, parts: int = 1) -> _Trace:
    """The physical forward pass of one batch on a parameter snapshot, recorded layer by layer.

    With `workers`, the batch is cut into `parts` micro-batches whose layer chains run at once:
    while one waits between layers (reply, encoder, next request), the others keep the boards busy.
    Every encoder and standardiser works row by row, so the merged trace is the batch's own.
    """

    def chain(part: torch.Tensor) -> _Trace:
        trace = _Trace(launched_at_step=step)
        view = copy.copy(snap)  # its own layer bodies, the snapshot's parameters
        with torch.no_grad():
            view.use([_Recording(system, trace)] * len(snap.encoders))(part)
        return trace

    if workers is None or parts == 1:
        return chain(x)
    traces = list(workers.map(chain, x.tensor_split(parts)))
    merged = _Trace(launched_at_step=step)
    for layer in zip(*(t.layers for t in traces), strict=True):
        merged.layers.append((torch.cat([d for d, _, _ in layer]), torch.cat([r for _, r, _ in layer]),
                              [s for _, _, src in layer for s in src]))
    return merged



class PipelinedStep(Step):
    """PAT with the hardware running `pcfg.pipeline` batches ahead, and optional online twin refinement.

    `twin` may map source id -> twin. With refinement on, the step refines its own copies of the
    twins (the caller's stay as they were: later trainers start from the same twin).
    """

    def __init__(self, task: Task, system: PhysicalSystem, twin: TwinSpec, cfg: TrainConfig,
                 pcfg: PipelineConfig | None = None, *, store: Any = None) -> None:
        pcfg = pcfg or PipelineConfig()
        if cfg.norm == "batch" and pcfg.micro_batches > 1:
            # Batch statistics of a micro-batch are not the batch's: the replay would not see the hardware's drives.
            raise ValueError(f"micro_batches = {pcfg.micro_batches} needs norm = 'twin' (norm = 'batch' normalises "
                             "by the whole batch's statistics); use micro_batches = 1")
        twins = {s: copy.deepcopy(t) for s, t in as_twins(twin).items()} if pcfg.refine_every else as_twins(twin)
        self.twin: TwinSpec = twins[""] if list(twins) == [""] else twins
        net, _, test_bodies = build("pat", task, system, self.twin, cfg)
        super().__init__(task, net, test_bodies, test_bodies, cfg)
        self.system, self.pcfg = system, pcfg
        self.refiner = TwinRefiner(twins, pcfg) if pcfg.refine_every else None
        self.recorder = Recorder(store, min_rows=4096) if store is not None else None
        self.refine_gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.hardware = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pnn-hardware")
        self.micro = (concurrent.futures.ThreadPoolExecutor(pcfg.micro_batches, thread_name_prefix="pnn-micro")
                      if pcfg.micro_batches > 1 else None)
        self.steps = 0

    def start_epoch(self, batches: list[torch.Tensor]) -> None:
        self.batches, self.staleness = batches, 0
        self.in_flight: deque[tuple[PhysicalNet, concurrent.futures.Future[_Trace]]] = deque()
        self.busy0, self.t0 = _busy_seconds(self.system), time.perf_counter()

    def step(self, k: int, idx: torch.Tensor) -> tuple[float, torch.Tensor]:
        net, task, batches = self.net, self.task, self.batches
        while len(self.in_flight) <= self.pcfg.pipeline and k + len(self.in_flight) < len(batches):
            snap = _snapshot(net)
            x_next = task.x_train[batches[k + len(self.in_flight)]]
            self.in_flight.append((snap, self.hardware.submit(_forward_on_hardware, snap, self.system, x_next,
                                                              self.steps, self.micro, self.pcfg.micro_batches)))
        snap, future = self.in_flight.popleft()
        trace = future.result()
        self.staleness = max(self.staleness, self.steps - trace.launched_at_step)
        # Running statistics (BatchNorm) belong to the live net: the replay updates them once per batch.
        # Train-mode normalisation uses the batch's own statistics, so the replayed drives stay the same.
        live_buffers = list(net.buffers())
        with torch.no_grad():
            for b_snap, b_live in zip(snap.buffers(), live_buffers, strict=True):
                b_snap.copy_(b_live)
        logits = snap.use([PhysicalLayer(_Replay(self.system, trace), self.twin)] * len(net.encoders))(task.x_train[idx])
        loss = nn.functional.cross_entropy(logits, task.y_train[idx])
        snap.zero_grad()
        loss.backward()
        for live, stashed in zip(net.parameters(), snap.parameters(), strict=True):
            live.grad = stashed.grad
        with torch.no_grad():
            for b_snap, b_live in zip(snap.buffers(), live_buffers, strict=True):
                b_live.copy_(b_snap)
        self.opt.step()
        self.sched.step()
        self.steps += 1
        for drive, response, sources in trace.layers:
            if self.refiner is not None:
                self.refiner.add(drive, response, sources)
            if self.recorder is not None:
                self.recorder.record(drive.numpy(), response.numpy(), sources)
        if self.refiner is not None and self.steps % self.pcfg.refine_every == 0:
            self.refiner.refine(self.refine_gen)
        return loss.item(), logits

    def end_epoch(self) -> dict[str, Any]:
        wall, busy1 = time.perf_counter() - self.t0, _busy_seconds(self.system)
        row: dict[str, Any] = {
            "pipeline": self.pcfg.pipeline, "max_staleness": self.staleness, "train_seconds": wall,
            "busy": None if self.busy0 is None or busy1 is None else (busy1[0] - self.busy0[0]) / (wall * busy1[1]),
        }
        if self.refiner is not None and self.refiner.history:
            row["twin_nrmse"] = float(np.nanmean([v for h in self.refiner.history[-3:] for v in h.values()]))
        return row

    def state_dict(self) -> dict[str, Any]:
        state = {**super().state_dict(), "steps": self.steps, "refine_gen": self.refine_gen.get_state()}
        if self.refiner is not None:
            state["refiner"] = self.refiner.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.steps = state["steps"]
        self.refine_gen.set_state(state["refine_gen"])
        if self.refiner is not None:
            self.refiner.load_state_dict(state["refiner"])

    def close(self) -> None:
        self.hardware.shutdown(wait=True, cancel_futures=True)
        if self.micro is not None:
            self.micro.shutdown(wait=True)
        if self.recorder is not None:
            self.recorder.close()


def train_pipelined(
    task: Task,
    system: PhysicalSystem,
    twin: TwinSpec,
    cfg: TrainConfig | None = None,
    pcfg: PipelineConfig | None = None,
    *,
    store: Any = None,
    run_dir: str | Path | None = None,
    show_progress: bool = True,
    resume: bool = False,
) -> Result:
    """`PipelinedStep` on the one epoch loop; checkpoints go to run_dir/checkpoints/pat-pipelined.seed<N>.pt.

    Args:
        task, system, twin, cfg: as for `pnn.train.train("pat", ...)`; `twin` may map source id -> twin.
        pcfg: pipelining and refinement settings.
        store: a DataStore that keeps every (drive, response, source) pair training measures.
        run_dir, resume: as for `pnn.train.train`.

    Returns:
        A Result whose history rows also hold, per epoch, `busy` (hardware busy fraction: board time
        over wall time, per board), `pipeline`, `max_staleness` and `twin_nrmse` (online, if refining).
    """
    cfg = cfg or TrainConfig()
    return run_step("pat-pipelined", lambda s: PipelinedStep(task, s, twin, cfg, pcfg, store=store), system, twin,
                    cfg, run_dir=run_dir, resume=resume, show_progress=show_progress)
