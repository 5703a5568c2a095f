"""PhysicalLayer: forward is the measurement, backward is the twin's vjp at the measured drive."""

import pytest
import torch
from toy_systems import Exact, LeakyTanh, TwoBoards

from pnn import PhysicalLayer, PhysicalSystem


def make_params(n: int) -> torch.nn.ParameterDict:
    torch.manual_seed(0)
    return torch.nn.ParameterDict(
        {
            "a1": torch.nn.Parameter(torch.rand(n) + 0.5),
            "b1": torch.nn.Parameter(torch.rand(n) * 0.2),
            "a2": torch.nn.Parameter(torch.rand(n) + 0.5),
            "b2": torch.nn.Parameter(torch.rand(n) * 0.2),
        }
    )


def deep_model(layer: torch.nn.Module, params: torch.nn.ParameterDict):
    """Encoder -> layer -> encoder -> the same layer again -> a scalar loss."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        h = layer(torch.clamp(params["a1"] * x + params["b1"], 0, 1))
        h = layer(torch.clamp(params["a2"] * (h + 1) / 2 + params["b2"], 0, 1))
        return h.pow(2).sum()

    return forward


def grads(params: torch.nn.ParameterDict, forward, x: torch.Tensor) -> dict[str, torch.Tensor]:
    params.zero_grad()
    forward(x).backward()
    return {k: p.grad.clone() for k, p in params.items()}


def test_pat_gradient_equals_true_backprop_with_exact_twin():
    system = LeakyTanh(8)
    x = torch.rand(16, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    exact = Exact(system)
    params = make_params(8).double()
    pat = grads(params, deep_model(PhysicalLayer(system, exact), params), x)
    true = grads(params, deep_model(exact, params), x)
    for k in pat:
        assert pat[k].abs().sum() > 0, f"{k} got no gradient"
        torch.testing.assert_close(pat[k], true[k], rtol=1e-5, atol=1e-7)


def test_forward_is_the_measurement_not_the_twin():
    system = LeakyTanh(8)
    wrong_twin = torch.nn.Linear(8, 8)
    x = torch.rand(4, 8)
    out = PhysicalLayer(system, wrong_twin)(x)
    torch.testing.assert_close(out, system(x))


class Cached:
    """A system that answers every call with the one tensor it keeps (a cache, a replay)."""

    n_in = n_out = 8

    def __init__(self) -> None:
        self.kept = torch.rand(4, 8)

    def __call__(self, drive: torch.Tensor) -> torch.Tensor:
        return self.kept


def test_a_system_that_returns_a_tensor_it_keeps_is_not_tied_into_the_graph():
    # PAT returns an alias, not a copy, of what the system measured: the system's own tensor stays
    # outside autograd, and two calls in one graph each get their own gradient.
    system, twin = Cached(), torch.nn.Linear(8, 8)
    layer = PhysicalLayer(system, twin)
    a, b = torch.rand(4, 8, requires_grad=True), torch.rand(4, 8, requires_grad=True)
    (layer(a) + 2 * layer(b)).sum().backward()
    assert system.kept.grad_fn is None and not system.kept.requires_grad
    ones = torch.ones(4, 8)
    torch.testing.assert_close(a.grad, ones @ twin.weight)
    torch.testing.assert_close(b.grad, 2 * ones @ twin.weight)


def test_twin_error_bends_gradient_but_upstream_still_learns():
    system = LeakyTanh(8)
    twin = Exact(LeakyTanh(8, gain=1.5))  # a twin with the wrong gain
    layer = PhysicalLayer(system, twin)
    w = torch.nn.Parameter(torch.full((8,), 0.5))
    opt = torch.optim.SGD([w], lr=0.5)
    target = system(torch.full((1, 8), 0.2))
    losses = []
    for _ in range(40):
        loss = (layer(w.clamp(0, 1)[None]) - target).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    assert not any(p.grad is not None for p in twin.parameters()), "the twin must stay frozen"


def test_each_sample_gets_its_own_sources_twin():
    pool = TwoBoards(8)
    twins = {name: Exact(board) for name, board in pool.boards.items()}
    layer = PhysicalLayer(pool, twins)
    x = torch.rand(6, 8, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    layer(x).sum().backward()
    for i in range(6):
        own = pool.boards["board-a" if i % 2 == 0 else "board-b"]
        xi = x[i : i + 1].detach().requires_grad_(True)
        own.exact(xi).sum().backward()
        torch.testing.assert_close(x.grad[i], xi.grad[0])
    other = pool.boards["board-b"]
    x0 = x[0:1].detach().requires_grad_(True)
    other.exact(x0).sum().backward()
    assert not torch.allclose(x.grad[0], x0.grad[0]), "routing must matter for this test to mean anything"


def test_missing_twin_for_a_source_is_a_clear_error():
    pool = TwoBoards(8)
    layer = PhysicalLayer(pool, {"board-a": Exact(pool.boards["board-a"])})
    x = torch.rand(2, 8, requires_grad=True)
    with pytest.raises(KeyError, match="board-b"):
        layer(x).sum().backward()


def test_outside_system_satisfies_protocol_and_works_in_sequential():
    system = LeakyTanh(8)
    assert isinstance(system, PhysicalSystem)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Sigmoid(), PhysicalLayer(system, Exact(system)), torch.nn.Linear(8, 2))
    model(torch.rand(5, 4)).sum().backward()
    assert model[0].weight.grad is not None and model[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("kind", ["electronic", "mechanical", "optical"])
def test_pat_equals_backprop_through_each_simulated_system_when_the_twin_is_exact(kind):
    from pnn.physics import Electronic, Mechanical, Noise, Optical

    cls = {"electronic": Electronic, "mechanical": Mechanical, "optical": Optical}[kind]
    system = cls(n_in=16, n_out=8, seed=2, noise=Noise.off())

    class Ideal(torch.nn.Module):
        def forward(self, drive):
            return system.ideal(drive)

    w = torch.nn.Parameter(torch.rand(16, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) + 0.5)
    x = torch.rand(4, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    target = torch.rand(4, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))

    def loss(layer):
        return (layer(torch.clamp(w * x * 0.6 + 0.2, 0, 1)) - target).pow(2).sum()

    (pat,) = torch.autograd.grad(loss(PhysicalLayer(system, Ideal())), w)
    (true,) = torch.autograd.grad(loss(Ideal()), w)
    assert true.abs().sum() > 0
    torch.testing.assert_close(pat, true, rtol=1e-4, atol=1e-6)  # forward is float32 measurement
