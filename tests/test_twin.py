"""Twin fitting, NRMSE, save/load, and resumable collection into the crash-safe store."""

import pytest
import torch
from toy_systems import LeakyTanh

from pnn import Twin, fit_twin
from pnn.store import DataStore, StoreError
from pnn.twin import nrmse


def test_fit_twin_learns_a_system_and_reports_heldout_nrmse():
    system = LeakyTanh(8)
    twin = fit_twin(system, 1200, seed=0, epochs=60, hidden=(64, 64), show_progress=False)
    assert 0 < twin.nrmse < 0.1
    assert twin.nrmse_per_channel.shape == (8,)
    assert twin.metadata["n_samples"] == 1200 and twin.metadata["system"]["n_in"] == 8
    x = torch.rand(200, 8)
    measured_nrmse, _ = nrmse(twin(x).detach(), system(x))
    assert measured_nrmse < 0.15


def test_untrained_twin_has_large_nrmse():
    system = LeakyTanh(8)
    twin = fit_twin(system, 100, epochs=1, hidden=(4,), lr=1e-5, show_progress=False)
    assert twin.nrmse > 0.3


def test_save_load_round_trip(tmp_path):
    system = LeakyTanh(8)
    twin = fit_twin(system, 300, epochs=5, hidden=(32,), show_progress=False)
    twin.save(tmp_path / "twin.pt")
    loaded = Twin.load(tmp_path / "twin.pt")
    x = torch.rand(10, 8)
    torch.testing.assert_close(loaded(x), twin(x))
    assert loaded.nrmse == twin.nrmse and loaded.metadata == twin.metadata
    torch.testing.assert_close(loaded.nrmse_per_channel, twin.nrmse_per_channel)


def test_collection_resumes_from_store_without_remeasuring(tmp_path):
    system = LeakyTanh(8)
    fit_twin(system, 500, chunk=100, store=tmp_path / "data", epochs=1, show_progress=False)
    assert system.calls == 5
    store = DataStore(tmp_path / "data")
    assert store.verify() == 500
    # Lose the last two chunks as if the collector had been killed, then resume.
    for path in store.chunk_paths()[3:]:
        path.unlink()
    drives_before, _ = DataStore(tmp_path / "data").load()
    system.calls = 0
    fit_twin(system, 500, chunk=100, store=tmp_path / "data", epochs=1, show_progress=False)
    assert system.calls == 2
    drives, responses = DataStore(tmp_path / "data").load()
    assert drives.shape == (500, 8) and responses.shape == (500, 8)
    torch.testing.assert_close(torch.from_numpy(drives[:300]), torch.from_numpy(drives_before))


def test_store_refuses_other_experiment_and_detects_damage(tmp_path):
    store = DataStore(tmp_path, meta={"system": "a"})
    store.append(torch.rand(4, 3).numpy(), torch.rand(4, 2).numpy())
    with pytest.raises(StoreError, match="different experiment"):
        DataStore(tmp_path, meta={"system": "b"})
    path = store.chunk_paths()[0]
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError):
        store.verify()


def test_shg_twin_points_the_gradient_the_optical_layer_s_way():
    # The optical layer goes as drive^4 and saturates: an MLP fitted on the same few hundred pairs bends
    # its gradient, the SHG model (the physics with its constants learned) does not.
    from pnn import physics
    from pnn.twin import fit
    from pnn.twin_data import grad_cosine

    torch.manual_seed(0)
    system = physics.Optical(n_in=8, n_out=8, seed=1)
    drives = torch.rand(600, 8)
    responses = system(drives)
    probe = torch.rand(128, 8)
    shg = fit(drives, responses, kind="shg", epochs=40, show_progress=False)
    mlp = fit(drives, responses, kind="mlp", epochs=40, hidden=(64, 64), show_progress=False)
    assert shg.metadata["kind"] == "shg" and shg.nrmse < mlp.nrmse
    cos_shg, cos_mlp = grad_cosine(shg, system.ideal, probe), grad_cosine(mlp, system.ideal, probe)
    assert cos_shg > 0.8 and cos_shg > cos_mlp + 0.05, (cos_shg, cos_mlp)  # measured: 0.88 against 0.74


def test_twin_kinds_have_their_own_learning_rate_and_unknown_kinds_are_named():
    from pnn import twin_models

    assert twin_models.learning_rate("shg") > twin_models.learning_rate("mlp")
    with pytest.raises(ValueError, match="unknown twin kind 'sgh'; choose one of mlp, temporal, shg"):
        twin_models.learning_rate("sgh")
