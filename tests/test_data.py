"""Task loaders: shapes, ranges, and one clear error line for a missing or wrong file."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from pnn.data import TaskError, load_task

VOWELS = Path(__file__).resolve().parents[2] / "shared" / "data" / "vowels_hillenbrand_subset.csv"


def test_digits():
    task = load_task("digits")
    assert task.x_train.shape[1] == 64 and task.n_classes == 10
    assert len(task.x_train) + len(task.x_test) == 1797
    assert 0 <= task.x_train.min() and task.x_train.max() <= 1


def test_vowels_from_shared_csv():
    task = load_task("vowels", VOWELS)
    assert (len(task.x_train), len(task.x_test)) == (210, 49)
    assert task.n_features == 12 and task.n_classes == 7
    assert 0 <= float(task.x_train.min()) and float(task.x_train.max()) <= 1
    assert set(task.classes) == {"ae", "ah", "aw", "uw", "er", "iy", "ih"}


@pytest.mark.parametrize("name", ["vowels", "mnist", "fashion-mnist"])
def test_missing_path_is_one_clear_line(name, tmp_path):
    with pytest.raises(TaskError) as err:
        load_task(name, tmp_path / "nope")
    message = str(err.value)
    assert "\n" not in message and "nope" in message and "--data" in message


def test_wrong_file_and_unknown_task(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(TaskError, match="not a vowel CSV"):
        load_task("vowels", bad)
    with pytest.raises(TaskError, match="choose one of"):
        load_task("cifar")


def _idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 8, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_mnist_idx_files_are_read_and_downsampled(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 20), ("t10k", 7)):
        _idx(tmp_path / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    task = load_task("mnist", tmp_path)
    assert task.x_train.shape == (20, 196) and task.x_test.shape == (7, 196)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(TaskError, match="t10k-labels"):
        load_task("mnist", tmp_path)
