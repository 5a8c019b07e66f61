"""What a TensorRT build is fed, made and checked on the CPU: the FP16 ONNX, the Q/DQ ONNX, the plan.

The strongly typed path (TensorRT 10+) takes every precision from the ONNX file, so the
files themselves are the thing to test, in ONNX Runtime. Fidelity figures come from the
random-weight tiny bundle, whose descriptors of different frames are almost parallel:
they show the conversion is structurally right, not that FP16 keeps recall.
"""
import sys

import numpy as np
import pytest

from optional_imports import import_or_skip

from jist_edge.encoder.tensorrt import build as engine_build
from jist_edge.encoder.tensorrt import policy as trt_policy
from jist_edge.errors import JistEdgeError
from map_routes import route_frames, write_images

onnx = import_or_skip("onnx")
import_or_skip("onnxconverter_common")

from jist_edge.encoder.tensorrt import fp16_onnx  # noqa: E402
from jist_edge.encoder.tensorrt.fp32_layers import onnx_fp32_head  # noqa: E402

FLOAT, FLOAT16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16


@pytest.fixture(scope="module")
def converted(tiny_bundle, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("fp16") / fp16_onnx.fp16_onnx_name(tiny_bundle.bundle_id))
    info = fp16_onnx.make_fp16_encoder(tiny_bundle.encoder_path, out)
    return info, onnx.load(tiny_bundle.encoder_path), onnx.load(out)


def _types(model):
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type
             for v in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)}
    types.update((i.name, i.data_type) for i in model.graph.initializer)
    return types


def test_fp16_copy_has_an_fp16_trunk_and_the_original_fp32_head(converted):
    info, original, model = converted
    assert [i.type.tensor_type.elem_type for i in model.graph.input] == [FLOAT]
    assert [o.type.tensor_type.elem_type for o in model.graph.output] == [FLOAT]
    casts = [n for n in model.graph.node if n.op_type == "Cast"]
    assert info["casts"] == len(casts) == 2  # frames -> FP16, trunk output -> FP32, nothing else
    head = set(info["fp32_nodes"])
    assert set(onnx_fp32_head(original)) <= head  # the layers the weak path pins, and their constants
    # the head's nodes and initializers are byte for byte the original ones
    same = {n.name: n.SerializeToString() for n in original.graph.node if n.name in head}
    assert {n.name: n.SerializeToString() for n in model.graph.node if n.name in head} == same
    before = {i.name: i.SerializeToString() for i in original.graph.initializer}
    types = _types(model)
    for node in model.graph.node:
        tensors = [t for t in list(node.input) + list(node.output) if t]
        if node.name in head:  # every tensor in or out of the head is FP32: no FP16 round trip inside
            assert {types.get(t, FLOAT) for t in tensors} == {FLOAT}, node.name
            for t in node.input:
                if t in before:
                    assert next(i for i in model.graph.initializer if i.name == t).SerializeToString() == before[t]
        elif node.op_type == "Conv":
            assert {types[t] for t in tensors} == {FLOAT16}, node.name


def test_fp16_copy_agrees_with_fp32_in_onnxruntime(tiny_bundle, converted):
    import onnxruntime as ort

    info = converted[0]
    rng = np.random.RandomState(0)
    frames = rng.standard_normal((4, 3, tiny_bundle.height, tiny_bundle.width)).astype(np.float32)
    outs = []
    for path in (tiny_bundle.encoder_path, info["path"]):
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        outs.append(session.run(None, {session.get_inputs()[0].name: frames})[0])
    want, got = outs
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    diff = float(np.abs(got - want).max())
    print("FP16 ONNX vs FP32 in ONNX Runtime (random weights): cosine min {:.7f}, max abs diff {:.3g}".format(
        cos.min(), diff))
    assert got.dtype == np.float32 and cos.min() > 0.9999 and diff < 1e-3
    assert diff > 0  # it really is another computation (FP16 weights and activations in the trunk)


def _graph(nodes, initializers):
    x = onnx.helper.make_tensor_value_info("x", FLOAT, [1, 2, 4, 4])
    y = onnx.helper.make_tensor_value_info("y", FLOAT, None)
    graph = onnx.helper.make_graph(nodes, "g", [x], [y], initializer=initializers)
    return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 13)])


def test_a_head_that_reads_the_trunk_twice_is_refused():
    w = onnx.numpy_helper.from_array(np.ones((2, 2, 1, 1), np.float32), "w")
    nodes = [
        onnx.helper.make_node("Conv", ["x", "w"], ["a"], name="conv"),
        onnx.helper.make_node("Relu", ["a"], ["b"], name="relu"),
        onnx.helper.make_node("ReduceL2", ["b"], ["c"], name="norm", keepdims=1, axes=[1]),
        onnx.helper.make_node("Add", ["c", "a"], ["y"], name="mix"),  # reads the conv output too
    ]
    with pytest.raises(JistEdgeError, match="mix reads a from the trunk"):
        fp16_onnx.split_head(_graph(nodes, [w]))
    with pytest.raises(JistEdgeError, match="no reduction"):
        fp16_onnx.split_head(_graph([onnx.helper.make_node("Relu", ["x"], ["y"], name="r")], []))


def test_missing_converter_is_one_line_naming_the_install(monkeypatch, tiny_bundle, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxconverter_common", None)  # import now raises ImportError
    out = str(tmp_path / "x.onnx")
    with pytest.raises(JistEdgeError) as info:
        fp16_onnx.make_fp16_encoder(tiny_bundle.encoder_path, out)
    assert "pip install onnx onnxconverter-common" in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "x.onnx").exists()


STRONG = {"tensorrt": "10.3.0", "typing": "strong", "gpu": "Orin", "compute_capability": "8.7",
          "fast_fp16": True, "fast_int8": True}
WEAK = {"tensorrt": "8.2.1.8", "typing": "weak", "gpu": "NVIDIA Tegra X1", "compute_capability": "5.3",
        "fast_fp16": True, "fast_int8": False}


def test_strongly_typed_fp16_is_built_from_the_fp16_copy(tiny_bundle, tmp_path):
    plan = engine_build.resolve_plan("best", STRONG, force=False, has_int8_data=False)
    assert plan.name == "fp16"  # best without calibration data
    recipe = trt_policy.build_recipe(plan, "strong")
    path, calibrator, extra = engine_build.onnx_for_recipe(recipe, tiny_bundle, STRONG, {}, None, str(tmp_path))
    assert path == str(tmp_path / fp16_onnx.fp16_onnx_name(tiny_bundle.bundle_id)) and calibrator is None
    assert extra["built_from"] == fp16_onnx.fp16_onnx_name(tiny_bundle.bundle_id)
    assert extra["fp32_layers"] and extra["fp16_converter"].startswith("onnxconverter-common")
    # the weakly typed path builds the bundle's own file and pins the head in TensorRT instead
    weak = trt_policy.build_recipe(engine_build.resolve_plan("best", WEAK, False, False), "weak")
    assert engine_build.onnx_for_recipe(weak, tiny_bundle, WEAK, {}, None, str(tmp_path))[:2] == (
        tiny_bundle.encoder_path, None)
    with pytest.raises(JistEdgeError, match="needs calibration data"):
        engine_build.resolve_plan("int8", STRONG, force=False, has_int8_data=False)


def test_strongly_typed_int8_is_built_from_the_qdq_file(tiny_bundle, tmp_path):
    from jist_edge.calibration.int8_source import int8_source, qdq_onnx_name

    images = str(tmp_path / "calib")
    write_images(images, route_frames(8, height=tiny_bundle.height, width=tiny_bundle.width, seed=4))
    source = int8_source(tiny_bundle, images, 8, str(tmp_path))
    recipe = trt_policy.build_recipe(trt_policy.resolve_precision("int8", True, True), "strong")
    profile = trt_policy.batch_profile((3, tiny_bundle.height, tiny_bundle.width), 5)
    path, calibrator, extra = engine_build.onnx_for_recipe(recipe, tiny_bundle, STRONG, profile, source, str(tmp_path))
    assert path == str(tmp_path / qdq_onnx_name(tiny_bundle.bundle_id)) and calibrator is None
    assert extra["int8_method"] == "qdq" and extra["built_from"] == qdq_onnx_name(tiny_bundle.bundle_id)
    ops = [n.op_type for n in onnx.load(path).graph.node]
    assert ops.count("QuantizeLinear") > 10 and ops.count("DequantizeLinear") > 10
    # the weakly typed path asks for an entropy calibrator instead, which needs TensorRT
    weak = trt_policy.build_recipe(trt_policy.resolve_precision("int8", True, True), "weak")
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(JistEdgeError, match="TensorRT is not importable"):
            engine_build.onnx_for_recipe(weak, tiny_bundle, WEAK, profile, source, str(tmp_path))
