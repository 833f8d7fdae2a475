"""Datasets for the course: the shipped MNIST-5k / Fashion-10k files and full IDX sets, checksummed.

Used in notebooks/00_start_here.ipynb and every training notebook.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.resources
import importlib.util
import math
import os
import urllib.request
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

# SHA256 of every file shipped in data/ (rebuild with `python tools/make_data.py`).
SHIPPED = {
    "mnist5k.npz": "2f7d6c430356d5fbc28573e7ed83a3f3c19c8073157b7a1fe52d32df02f95666",
    "fashion10k.npz": "60b342f50014274892cb3c9dce8282773c7a6bbcbc609e4e02838b3312924d84",
}
DATASETS = {"mnist5k": "mnist5k.npz", "fashion10k": "fashion10k.npz"}
MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
_CLASS_NAMES = {"mnist5k": MNIST_CLASSES, "fashion10k": FASHION_CLASSES,
                "mnist": MNIST_CLASSES, "fashion-mnist": FASHION_CLASSES}

_IDX_STEMS = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
              "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
# Full datasets: mirrors, checksums of the published .gz files, and SHA256 of the IDX payload.
# MNIST .gz MD5s are those torchvision publishes (torchvision/datasets/mnist.py). Fashion-MNIST:
# the upstream .gz files were rebuilt byte-exactly from Debian's (same deflate stream, original
# gzip header restored) and match the upstream MD5s; the SHA256s were computed from them.
FULL_DATASETS = {
    "mnist": {
        "mirrors": ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                    "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        "gz": {"x_train": "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873",
               "y_train": "md5:d53e105ee54ea40749a09fcbcd1e9432",
               "x_test": "md5:9fb629c4189551a2d022fa330f9573f3",
               "y_test": "md5:ec29112dd5afa0611ce80d1b7f02629c"},
        "payload": {},
    },
    "fashion-mnist": {
        "mirrors": ("https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
                    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
        "gz": {"x_train": "sha256:3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
               "y_train": "sha256:a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
               "x_test": "sha256:346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
               "y_test": "sha256:67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"},
        "payload": {
            "x_train": "sha256:c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "y_train": "sha256:bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "x_test": "sha256:5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "y_test": "sha256:0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"},
    },
}
_CHECKOUT_DATA = Path(__file__).resolve().parent.parent / "data"  # a git checkout
_DATA_PACKAGE = "bn_helpers._datafiles"  # data/ in an installed wheel, see pyproject.toml
_DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_HINT = ("Rebuild shipped files with `python tools/make_data.py`, or delete the file and "
         "re-download it with bn_helpers.data.download(...).")


class DataFileError(ValueError):
    """A data file is truncated, corrupt or not in the expected format."""


class DataChecksumError(ValueError):
    """A data file's checksum differs from the expected one."""


class Dataset(NamedTuple):
    """Train/test split: images float32 in [0, 1], labels int32, plus name and class names.

    Used in notebooks/00_start_here.ipynb and every training notebook.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    class_names: tuple[str, ...]


def _check_name(name: str, valid) -> None:
    if name not in valid:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(map(repr, valid))}")


def _split_checksum(expected: str) -> tuple[str, str]:
    algo, sep, digest = expected.strip().lower().rpartition(":")
    if not sep:
        algo = {64: "sha256", 32: "md5"}.get(len(digest), "")
    if algo not in ("sha256", "md5") or not digest:
        raise ValueError(f"checksum {expected!r} must look like 'sha256:<hex>' or 'md5:<hex>'")
    return algo, digest


def _mismatch(path, algo: str, digest: str, actual: str) -> DataChecksumError:
    return DataChecksumError(f"{path}: checksum mismatch: expected {algo}:{digest}, "
                             f"actual {algo}:{actual}. The file is corrupt or was changed. {_HINT}")


def verify_file(path, expected: str) -> str:
    """Check a file against 'sha256:<hex>' or 'md5:<hex>'; return it, else raise DataChecksumError.

    Used in notebooks/00_start_here.ipynb and every training notebook (via load_dataset).
    """
    algo, digest = _split_checksum(expected)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: data file not found. {_HINT}")
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    actual = h.hexdigest()
    if actual != digest:
        raise _mismatch(path, algo, digest, actual)
    return f"{algo}:{actual}"


def _shipped_file(filename: str) -> Path:
    """<repo>/data/<filename> in a checkout, else the copy in the installed package."""
    checkout = _CHECKOUT_DATA / filename
    if checkout.is_file():
        return checkout
    spec = importlib.util.find_spec(_DATA_PACKAGE)
    if spec is not None and spec.submodule_search_locations is not None:  # data/ as a package
        installed = importlib.resources.files(_DATA_PACKAGE) / filename
        if installed.is_file():
            return Path(str(installed))
    raise FileNotFoundError(f"shipped data file {filename} not found in {checkout.parent} or in "
                            f"the installed package {_DATA_PACKAGE}. Reinstall bn-helpers.")


@functools.lru_cache(maxsize=8)
def _read_npz(path: str, sha256: str) -> dict[str, np.ndarray]:
    """Verify then read a shipped .npz once; arrays are cached read-only."""
    verify_file(path, f"sha256:{sha256}")
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    for arr in arrays.values():
        arr.flags.writeable = False
    return arrays


def _to_dataset(arrays, name, class_names, *, flatten, binarize=False) -> Dataset:
    def images(x):
        x = np.asarray(x, dtype=np.float32) / np.float32(255.0)
        if binarize:
            x = (x >= 0.5).astype(np.float32)
        return x.reshape(len(x), -1) if flatten else x.reshape(*x.shape, 1)

    return Dataset(images(arrays["x_train"]), arrays["y_train"].astype(np.int32),
                   images(arrays["x_test"]), arrays["y_test"].astype(np.int32),
                   name, tuple(class_names))


def load_dataset(name: str = "mnist5k", *, flatten: bool = True, binarize: bool = False,
                 _path=None) -> Dataset:
    """Load a shipped dataset ('mnist5k' or 'fashion10k'), checksum-verified, as fresh arrays.

    flatten=True gives images (N, 784), else (N, 28, 28, 1) NHWC; binarize thresholds at 0.5.
    Used in notebooks/00_start_here.ipynb and every training notebook.
    """
    _check_name(name, DATASETS)
    filename = DATASETS[name]
    path = _shipped_file(filename) if _path is None else Path(_path)
    arrays = _read_npz(str(path), SHIPPED[filename])
    return _to_dataset(arrays, name, _CLASS_NAMES[name], flatten=flatten, binarize=binarize)


def _idx_payload(path) -> bytes:
    """Whole (decompressed) bytes of an IDX file, raw or gzip (detected from its first bytes)."""
    path = Path(path)
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise DataFileError(f"{path}: corrupt or truncated gzip data ({e})") from e
    return data


def _parse_idx(data: bytes, path) -> np.ndarray:
    if len(data) < 4 or data[:2] != b"\x00\x00":
        magic = data[:4].hex() or "empty file"
        raise DataFileError(f"{path}: not an IDX file (bad magic number {magic})")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise DataFileError(f"{path}: unknown IDX dtype code 0x{code:02x}")
    if ndim == 0 or len(data) < 4 + 4 * ndim:
        raise DataFileError(f"{path}: IDX header too short or zero dimensions (ndim={ndim})")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = math.prod(dims) * dtype.itemsize
    got = len(data) - 4 - 4 * ndim
    if got != expected:
        what = "truncated" if got < expected else "has trailing bytes"
        raise DataFileError(f"{path}: IDX payload {what}: {got} bytes, expected {expected} "
                            f"for shape {dims} of {dtype}")
    arr = np.frombuffer(data, dtype, offset=4 + 4 * ndim).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))  # native byte order, writable copy


def read_idx(path) -> np.ndarray:
    """Parse an IDX file (raw or .gz) into a numpy array, raising DataFileError if it is malformed.

    Used in notebooks/00_start_here.ipynb (full datasets) and tools/make_data.py.
    """
    return _parse_idx(_idx_payload(path), Path(path))


def _idx_path(folder: Path, key: str) -> Path:
    stem = _IDX_STEMS[key]
    for candidate in (folder / (stem + ".gz"), folder / stem):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{folder}: neither {stem}.gz nor {stem} found")


def load_idx_folder(folder, *, name: str = "idx", flatten: bool = True, class_names=None,
                    _payload_checksums=None) -> Dataset:
    """Read the four standard MNIST-style IDX files (raw or .gz) in a folder into a Dataset.

    Used in notebooks/00_start_here.ipynb (full MNIST / Fashion-MNIST).
    """
    folder = Path(folder)
    arrays = {}
    for key in _IDX_STEMS:
        path = _idx_path(folder, key)
        data = _idx_payload(path)
        if _payload_checksums and key in _payload_checksums:
            algo, digest = _split_checksum(_payload_checksums[key])
            actual = hashlib.new(algo, data).hexdigest()
            if actual != digest:
                raise _mismatch(f"{path} (decompressed)", algo, digest, actual)
        arrays[key] = _parse_idx(data, path)
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or x.dtype != np.uint8 or y.ndim != 1 or len(x) != len(y):
            raise DataFileError(f"{folder}: {split} images must be uint8 (N, H, W) and labels "
                                f"(N,); got {x.dtype} {x.shape} and {y.dtype} {y.shape}")
    if class_names is None:
        top = int(max(arrays["y_train"].max(initial=0), arrays["y_test"].max(initial=0)))
        class_names = _CLASS_NAMES.get(name, tuple(str(i) for i in range(top + 1)))
    return _to_dataset(arrays, name, class_names, flatten=flatten)


def debian_fashion_mnist_folder() -> Path | None:
    """Folder of Debian's dataset-fashion-mnist package, or None if it is not installed.

    Used in notebooks/00_start_here.ipynb.
    """
    ok = (_DEBIAN_FASHION / "train-images-idx3-ubyte.gz").is_file()
    return _DEBIAN_FASHION if ok else None


def load_full(name: str, folder=None, *, flatten: bool = True, verify: bool = True) -> Dataset:
    """Load full 'mnist' or 'fashion-mnist' (60k/10k) from a folder, or Debian's Fashion-MNIST.

    verify checks each file's payload SHA256 (Fashion-MNIST) or the .gz MD5 (MNIST).
    Used in notebooks/00_start_here.ipynb.
    """
    _check_name(name, FULL_DATASETS)
    if folder is None and name == "fashion-mnist":
        folder = debian_fashion_mnist_folder()
    if folder is None:
        raise FileNotFoundError(
            f"no local copy of {name!r}: run bn_helpers.data.download({name!r}, folder) once "
            f"(needs internet), then bn_helpers.data.load_full({name!r}, folder)")
    info = FULL_DATASETS[name]
    if verify and not info["payload"]:  # MNIST: only the published .gz checksums are known
        for key, checksum in info["gz"].items():
            if (path := _idx_path(Path(folder), key)).suffix == ".gz":
                verify_file(path, checksum)
    return load_idx_folder(folder, name=name, flatten=flatten,
                           _payload_checksums=info["payload"] if verify else None)


def download(name: str, folder, *, timeout: float = 60.0) -> Path:
    """Download the four IDX .gz files of 'mnist' or 'fashion-mnist' into folder, verified.

    Verified files already there are kept, others replaced; a bad download is deleted and refused.
    Used in notebooks/00_start_here.ipynb (only when the user asks; never in tests).
    """
    _check_name(name, FULL_DATASETS)
    info = FULL_DATASETS[name]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for key, checksum in info["gz"].items():
        filename = _IDX_STEMS[key] + ".gz"
        target = folder / filename
        if target.is_file():
            try:
                verify_file(target, checksum)
                continue
            except DataChecksumError:
                target.unlink()
        errors = []
        for mirror in info["mirrors"]:
            part = folder / (filename + ".part")
            try:
                with urllib.request.urlopen(mirror + filename, timeout=timeout) as resp, \
                        open(part, "wb") as out:
                    out.writelines(iter(lambda: resp.read(1 << 20), b""))
                verify_file(part, checksum)
            except (OSError, DataChecksumError) as e:
                part.unlink(missing_ok=True)
                errors.append(f"{mirror + filename}: {e}")
                continue
            os.replace(part, target)
            break
        else:
            raise OSError(f"could not download a verified {filename} ({checksum}):\n  "
                          + "\n  ".join(errors))
    return folder
