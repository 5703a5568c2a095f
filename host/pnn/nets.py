"""The networks PAT trains: encoders, standardisers, a readout, and layer slots filled per trainer.

The network (after the paper): input -> [mix] -> encoder -> physical layer -> (standardise -> [mix]
-> encoder -> physical layer) x (depth - 1) -> standardise -> linear readout. Encoders make the
layer's drive: `affine` is the element-wise `clip(a*h + b, 0, 1)` of the electronic and mechanical
nets (between physical layers it is the trainable digital rescaling), `concat` is the SHG net's
`[h, theta]` with trainable theta. `mix = true` puts a trainable digital Linear before each encoder:
the paper's hybrid physical-digital network (its SHG MNIST net is `depth = 1, mix = true`). Depth
> 1 runs several passes of the one system. `passes = P` runs P passes of the system side by side in
each layer (P drives of n_in, one system call of P rows per sample): the physics as a nonlinear
feature expansion, P * n_out features into the next layer; `repeats = R` measures each drive R
times and averages (readout noise / sqrt(R), R times the queries). `build` says what fills the
layer slots while training and while testing, for each trainer (passes and repeats apply to all):

    digital    a trainable Linear + tanh of the layer's shape (a digital net of this size)
    linear     the physics removed: the drive itself (bin-averaged to n_out values when n_out < n_in),
               so the same digital parameters form a (clipped) linear model: the baseline the
               physics has to beat. With `mix` the encoders' clip to the DAC range [0, 1] makes it
               a one-hidden-layer clipped-ReLU net, not a linear one
    linear-unclipped  the physics and the encoders' clip removed: the same parameters form an affine
               function of the input, a true linear classifier (the issue's "logistic regression")
    in-silico  the twin while training, the system while testing
    pat        the system forward, the twin backward (PhysicalLayer)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal, Self

import torch
from torch import nn

from .data import Task
from .link.errors import UserError
from .pat import PhysicalLayer, TwinSpec
from .system import PhysicalSystem, as_twins, measure
from .twin_models import bin_matrix

Trainer = Literal["digital", "linear", "linear-unclipped", "in-silico", "pat", "pat-pipelined", "pat-refine", "pat-dat", "spsa", "pepg",
                  "cma-es", "local", "forward-forward"]
TRAINERS: tuple[Trainer, ...] = ("digital", "linear", "linear-unclipped", "in-silico", "pat", "pat-pipelined",
                                 "pat-refine", "pat-dat", "spsa", "pepg", "cma-es", "local", "forward-forward")
"""Every trainer `pnn.train.train` runs; each is a step function on train.py's one epoch loop (pnn.trainers)."""


class WidthError(UserError, ValueError):
    """The task's inputs cannot fill the system's drive (its n_in); the message says how to mend it."""


@dataclass
class TrainConfig:
    """What to train and how; every field has a sensible default for the digits task."""

    depth: int = 2
    encoder: Literal["affine", "concat"] = "affine"
    epochs: int = 20
    batch_size: int = 32
    lr: float = 0.02
    seed: int = 0
    mix: bool = False  # a trainable digital Linear before each encoder (hybrid physical-digital net)
    data_width: int = 0  # concat: drive bins for the data (0: the input's width, or half the drive with mix)
    norm: Literal["twin", "batch"] = "twin"  # standardise responses by the twin's statistics, or by the batch's
    passes: int = 1  # physical passes of the one system per layer, side by side: passes * n_out features
    repeats: int = 1  # measurements of each drive, averaged: readout noise down by sqrt(repeats)

    def __post_init__(self) -> None:
        for name in ("depth", "passes", "repeats"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be an int >= 1, got {value!r}")


class Standardise(nn.Module):
    """Fixed per-channel (x - mean) / std, so encoders see unit-scale inputs whatever the physics."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.detach().clone().float())
        self.register_buffer("std", std.detach().clone().float().clamp_min(1e-6))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return (h - self.mean) / self.std


def _dac(drive: torch.Tensor, clip: bool) -> torch.Tensor:
    """The DAC's range [0, 1]; `clip = False` (the linear-unclipped baseline) leaves the drive affine."""
    return torch.clamp(drive, 0, 1) if clip else drive


def _fit_width(h: torch.Tensor, width: int) -> torch.Tensor:
    """Hold each value for width / n ticks (a DAC holding a pixel), so n features drive `width` samples."""
    n = h.shape[1]
    if width % n:
        raise WidthError(f"an input of {n} values cannot fill a drive of {width} samples; use a multiple of {n}")
    return h.repeat_interleave(width // n, dim=1)


class AffineEncoder(nn.Module):
    """drive = clip(a * h + b, 0, 1), element-wise with trainable a, b, for each of `passes` drives side by side.

    An input as wide as all passes' drives (a mix's output) is split among them; a narrower one is
    held to fill one drive and given to every pass (each with its own a, b: its own working point).
    `clip = False` drops the clip (the linear-unclipped baseline: no parameter changes).
    """

    clip = True

    def __init__(self, n_in: int, gen: torch.Generator, passes: int = 1) -> None:
        super().__init__()
        self.a = nn.Parameter(0.25 + 0.05 * torch.randn(passes * n_in, generator=gen))
        self.b = nn.Parameter(0.5 + 0.05 * torch.randn(passes * n_in, generator=gen))
        self.n_in, self.passes = n_in, passes

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if h.shape[1] != len(self.a):
            h = _fit_width(h, self.n_in).repeat(1, self.passes)
        return _dac(self.a * h + self.b, self.clip)


class ConcatEncoder(nn.Module):
    """drive = [clip(a * h + b, 0, 1), clip(theta, 0, 1)]: data and trainable parameters side by side.

    The data half is biased towards full amplitude (b = 0.7): in a system whose output grows as a
    power of the drive (SHG: the fourth), weak inputs drown in the readout noise. `clip` as AffineEncoder's.
    """

    clip = True

    def __init__(self, n_data: int, n_in: int, gen: torch.Generator, passes: int = 1) -> None:
        super().__init__()
        if n_in <= n_data:
            raise WidthError(f"concat needs a drive wider than the data ({n_data}); the system takes {n_in}")
        self.a = nn.Parameter(0.2 + 0.02 * torch.randn(passes * n_data, generator=gen))
        self.b = nn.Parameter(0.7 + 0.02 * torch.randn(passes * n_data, generator=gen))
        self.theta = nn.Parameter(0.5 + 0.2 * torch.rand(passes * (n_in - n_data), generator=gen))
        self.n_data, self.passes = n_data, passes

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if h.shape[1] != len(self.a):  # the same data in every pass, each with its own parameters
            h = h.repeat(1, self.passes)
        data = _dac(self.a * h + self.b, self.clip).view(len(h), self.passes, self.n_data)
        theta = _dac(self.theta, self.clip).view(self.passes, -1).expand(len(h), -1, -1)
        return torch.cat([data, theta], dim=2).flatten(1)


def _mix(n_from: int, n_to: int, gen: torch.Generator) -> nn.Linear:
    """A digital Linear whose outputs start at unit scale for unit-scale inputs (so the encoder's a, b fit)."""
    mix = nn.Linear(n_from, n_to)
    with torch.no_grad():
        mix.weight.copy_(torch.randn(n_to, n_from, generator=gen) / n_from**0.5)
        mix.bias.zero_()
    return mix


def _data_width(cfg: TrainConfig, n_from: int, n_in: int) -> int:
    if cfg.encoder == "affine":
        return n_in
    if cfg.data_width:
        return cfg.data_width
    return n_in // 2 if cfg.mix else n_from


class LayerSlots(nn.Module):
    """A network with one slot per layer for what runs there (the system, a twin, a digital body): `use` fills them."""

    bodies: list[Callable[[torch.Tensor], torch.Tensor]]

    def n_slots(self) -> int:
        raise NotImplementedError  # each network says how many layers it has

    def use(self, bodies: list[Callable[[torch.Tensor], torch.Tensor]]) -> Self:
        if len(bodies) != self.n_slots():
            raise ValueError(f"need {self.n_slots()} layer bodies, got {len(bodies)}")
        self.bodies = bodies
        return self


class PhysicalNet(LayerSlots):
    """Encoders, standardisers and a readout; the layer slots are filled by `use(bodies)`.

    With `digital`, the net also owns a trainable Linear + tanh per layer (`self.digital`, the
    digital baseline's bodies), standardised on the fly because their output scale moves as they learn.
    """

    def __init__(self, task: Task, n_in: int, n_out: int, response_stats: tuple[torch.Tensor, torch.Tensor],
                 cfg: TrainConfig, *, digital: bool = False) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(cfg.seed)
        x = task.x_train
        self.input_norm = Standardise(x.mean(0), x.std(0))
        k = self.passes = cfg.passes
        self.n_in, self.repeats = n_in, cfg.repeats
        widths = [task.n_features] + [k * n_out] * (cfg.depth - 1)
        # each pass's data: a previous layer's passes feed one each (concat without mix); the input feeds all
        data = [_data_width(cfg, w if i == 0 else n_out, n_in) for i, w in enumerate(widths)]
        self.mixes = nn.ModuleList(_mix(w, k * d, gen) if cfg.mix else nn.Identity()
                                   for w, d in zip(widths, data, strict=True))
        if cfg.encoder == "affine":
            self.encoders = nn.ModuleList(AffineEncoder(n_in, gen, k) for _ in widths)
        else:
            self.encoders = nn.ModuleList(ConcatEncoder(d, n_in, gen, k) for d in data)
        mean, std = response_stats
        self.norms = nn.ModuleList(Standardise(mean.repeat(k), std.repeat(k)) for _ in range(cfg.depth))
        self.readout = nn.Linear(k * n_out, task.n_classes)
        with torch.no_grad():  # from the net's own generator: every trainer starts from the same readout
            bound = 1 / (k * n_out) ** 0.5
            self.readout.weight.copy_((torch.rand(task.n_classes, k * n_out, generator=gen) * 2 - 1) * bound)
            self.readout.bias.copy_((torch.rand(task.n_classes, generator=gen) * 2 - 1) * bound)
        if digital:
            self.digital = nn.ModuleList(nn.Sequential(nn.Linear(n_in, n_out), nn.Tanh()) for _ in range(cfg.depth))
            _on_the_fly_norms(self, k * n_out, cfg.depth)
        self.bodies: list[Callable[[torch.Tensor], torch.Tensor]] = []

    def n_slots(self) -> int:
        return len(self.encoders)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.input_norm(x)
        for mix, encoder, body, norm in zip(self.mixes, self.encoders, self.bodies, self.norms, strict=True):
            h = norm(self._run(body, encoder(mix(h)))[1])
        return self.readout(h)

    def _run(self, body: Callable[[torch.Tensor], torch.Tensor], drive: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """One layer slot: the drive [B, passes * n_in] as passes * repeats rows of the system (one call,
        each sample's rows contiguous), the repeats averaged; returns (drives [B * passes, n_in], [B, passes * n_out])."""
        drives = drive.reshape(-1, self.n_in)
        rows = drives.repeat_interleave(self.repeats, dim=0) if self.repeats > 1 else drives
        response = body(rows)
        if self.repeats > 1:
            response = response.view(len(drives), self.repeats, -1).mean(1)
        return drives, response.reshape(len(drive), -1)

    def drives(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(drive, response) of each layer slot for inputs x, without gradients: where training drives the system.

        Drives are the system's rows [B * passes, n_in]; responses their (repeat-averaged) measurements."""
        pairs = []
        with torch.no_grad():
            h = self.input_norm(x)
            for mix, encoder, body, norm in zip(self.mixes, self.encoders, self.bodies, self.norms, strict=True):
                drives, response = self._run(body, encoder(mix(h)))
                pairs.append((drives, response.reshape(len(drives), -1)))
                h = norm(response)
        return pairs


class Unphysical(nn.Module):
    """The physics removed: drive [B, n_in] -> itself, or its average over n_out contiguous bins.

    Fixed and parameter-free, so a net with it in every layer slot has exactly the physical net's
    parameters and computes a (clipped) linear function of its input: the linear baseline.
    """

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.register_buffer("bins", bin_matrix(n_in, n_out))

    def forward(self, drive: torch.Tensor) -> torch.Tensor:
        return drive @ self.bins


def _twin_stats(twin: TwinSpec) -> tuple[torch.Tensor, torch.Tensor]:
    twins = list(as_twins(twin).values())
    mean = torch.stack([t.y_mean for t in twins]).mean(0)
    std = torch.stack([t.y_std for t in twins]).mean(0)
    return mean, std


def _first_twin(twin: TwinSpec) -> nn.Module:
    return next(iter(as_twins(twin).values()))


# The linear baseline's layer slots return its clipped drives unchanged: no readout noise keeps a feature's
# variance up, so a drive entry clipped in most images has a variance near 1e-7, BatchNorm (eps 1e-5)
# scales it ~300x, and at test time (running statistics) its small offsets swamp the readout: a 3-layer
# linear net fell to chance. An eps near the physical responses' own variance (0.005-0.03 on the
# simulated systems) bounds that; physical and digital bodies keep torch's default.
_LINEAR_BN_EPS = 1e-2


def _on_the_fly_norms(net: PhysicalNet, n_out: int, depth: int, eps: float = 1e-5) -> None:
    # A digital layer's output scale moves as it learns (and the drive's scale is not a twin's), so
    # it is standardised on the fly; BatchNorm without affine adds no parameters.
    net.norms = nn.ModuleList(nn.BatchNorm1d(n_out, affine=False, eps=eps) for _ in range(depth))


def build(trainer: Trainer, task: Task, system: PhysicalSystem, twin: TwinSpec | None, cfg: TrainConfig) -> tuple[PhysicalNet, list, list]:
    """The network for `trainer`, with what fills its layer slots while training and while testing."""
    n_in, n_out = system.n_in, system.n_out
    stats = (torch.zeros(n_out), torch.ones(n_out)) if twin is None else _twin_stats(twin)
    net = PhysicalNet(task, n_in, n_out, stats, cfg, digital=trainer == "digital")
    if trainer == "digital":
        return net, list(net.digital), list(net.digital)
    if trainer in ("linear", "linear-unclipped"):
        _on_the_fly_norms(net, cfg.passes * n_out, cfg.depth, eps=_LINEAR_BN_EPS)
        for encoder in net.encoders:  # linear-unclipped: no clip either, so the whole net is affine
            encoder.clip = trainer == "linear"
        bodies = [Unphysical(n_in, n_out)] * cfg.depth
        return net, bodies, bodies
    if cfg.norm == "batch":  # running statistics of what the layer really returns (PAT: the system's)
        _on_the_fly_norms(net, cfg.passes * n_out, cfg.depth)
    physical = PhysicalLayer(system, twin)  # type: ignore[arg-type]
    test_bodies = [physical] * cfg.depth
    if trainer == "in-silico":
        return net, [_first_twin(twin).requires_grad_(False)] * cfg.depth, test_bodies  # type: ignore[arg-type]
    return net, test_bodies, test_bodies




def training_pairs(task: Task, system: PhysicalSystem, cfg: TrainConfig, n_samples: int, *, seed: int = 0,
                   chunk: int = 256, spread: float = 0.5, gain: tuple[float, float] = (1.0, 1.0),
                   stats: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """`n_samples` (drive, response) pairs measured where training will drive the system.

    Each chunk runs training images through a freshly initialised network of `cfg`'s shape (every
    layer slot on the system: each measurement is a pair, none is thrown away), with its encoder
    gains scaled by exp(spread * N(0, 1)), offsets moved by spread / 4 * N(0, 1) and concat
    parameters drawn uniformly, so the pairs cover where training may move them. With `gain` = (lo,
    hi), each chunk's gains are also scaled by one factor drawn log-uniformly from lo..hi: training
    raises the gains until much of the drive clips (trained nets hold a quarter to a third of their
    drive entries at 0 and as many at 1), which the initial network never does. `stats` standardise
    the responses between layers (default: each chunk's own).
    """
    drives, responses, per_image = [], [], cfg.depth * cfg.passes
    for index in range(math.ceil(n_samples / chunk)):
        gen = torch.Generator().manual_seed(seed * 1_000_003 + index)
        size = min(chunk, n_samples - index * chunk)
        net = PhysicalNet(task, system.n_in, system.n_out, stats or (torch.zeros(system.n_out), torch.ones(system.n_out)),
                          replace(cfg, seed=int(torch.randint(2**31, (1,), generator=gen))))
        with torch.no_grad():
            lo, hi = math.log(gain[0]), math.log(gain[1])
            scale = math.exp(lo + (hi - lo) * float(torch.rand(1, generator=gen))) if hi > lo else gain[0]
            for encoder in net.encoders:
                encoder.a.mul_(scale * torch.exp(spread * torch.randn(encoder.a.shape, generator=gen)))
                encoder.b.add_(spread / 4 * torch.randn(encoder.b.shape, generator=gen))
                if isinstance(encoder, ConcatEncoder):
                    encoder.theta.copy_(torch.rand(encoder.theta.shape, generator=gen))
        if stats is None:
            net.norms = nn.ModuleList(nn.BatchNorm1d(cfg.passes * system.n_out, affine=False).train()
                                      for _ in range(cfg.depth))
        images = task.x_train[torch.randint(len(task.x_train), (math.ceil(size / per_image),), generator=gen)]
        pairs = net.use([lambda d: measure(system, d)[0]] * cfg.depth).drives(images)
        drives.append(torch.cat([d for d, _ in pairs])[:size])
        responses.append(torch.cat([r for _, r in pairs])[:size])
    return torch.cat(drives), torch.cat(responses)
