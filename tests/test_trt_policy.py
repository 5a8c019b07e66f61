"""The TensorRT decisions that are plain functions: API per version, precision, profile."""
import pytest

from jist_edge.engines import policy as trt_policy
from jist_edge.errors import JistEdgeError


@pytest.mark.parametrize("version, api", [
    ("8.0.1.6", trt_policy.API_BINDINGS_V2),   # JetPack 4.6.0
    ("8.2.1.8", trt_policy.API_BINDINGS_V2),   # JetPack 4.6.1+ (Nano)
    ("8.4.3", trt_policy.API_BINDINGS_V2),
    ("8.5.2.2", trt_policy.API_NAMED_V3),      # JetPack 5.1
    ("8.6.1", trt_policy.API_NAMED_V3),
    ("10.3.0", trt_policy.API_NAMED_V3),       # JetPack 6
    ("10.13.0.post1", trt_policy.API_NAMED_V3),
])
def test_api_for_version(version, api):
    assert trt_policy.api_for_version(version) == api


def test_other_version_switches():
    assert trt_policy.workspace_api_for_version("8.2.1") == "max_workspace_size"
    assert trt_policy.workspace_api_for_version("8.4.1") == "memory_pool_limit"
    assert trt_policy.workspace_api_for_version("10.3.0") == "memory_pool_limit"
    assert trt_policy.precision_constraint_flag("8.0.1") == "STRICT_TYPES"
    assert trt_policy.precision_constraint_flag("8.2.1") == "OBEY_PRECISION_CONSTRAINTS"
    assert trt_policy.needs_explicit_batch_flag("8.2.1") and not trt_policy.needs_explicit_batch_flag("10.0.1")
    assert trt_policy.int8_method_for_version("8.2.1") == "calibrator"
    assert trt_policy.int8_method_for_version("8.6.1") == "calibrator"
    assert trt_policy.int8_method_for_version("10.3.0") == "qdq"
    assert trt_policy.uses_calibration_profile("8.5.2") and not trt_policy.uses_calibration_profile("10.0.0")


@pytest.mark.parametrize("bad", ["7.1.3", "6.0"])
def test_old_tensorrt_refused(bad):
    with pytest.raises(JistEdgeError, match="8.0 or newer"):
        trt_policy.api_for_version(bad)


@pytest.mark.parametrize("newer", ["11.0.0", "11.4.0.1"])
def test_tensorrt_11_refused(newer):
    # 11 removed BuilderFlag.FP16/INT8, precision constraints and platform_has_fast_*
    with pytest.raises(JistEdgeError, match="TensorRT 8.0-10.x") as info:
        trt_policy.api_for_version(newer)
    assert "\n" not in str(info.value)
    trt_policy.check_supported("10.13.0.post1")  # the last supported major passes


def test_calibration_profile_is_fixed_at_the_batch_shape():
    # calibration runs at kOPT of the calibration profile: it must equal the batches' shape
    prof = trt_policy.calibration_profile((4, 3, 96, 128))
    assert prof["min"] == prof["opt"] == prof["max"] == (4, 3, 96, 128)
    engine = trt_policy.batch_profile((3, 96, 128), 5)
    assert prof["opt"] != engine["opt"]  # the engine's own profile is tuned for batch 1
    for bad in [(), (0, 3, 96, 128), (2, 3, -1, 128)]:
        with pytest.raises(JistEdgeError, match="calibration batch shape"):
            trt_policy.calibration_profile(bad)


@pytest.mark.parametrize("version, limit", [("8.0.1.6", 13), ("8.2.1.8", 13), ("8.4.3", 13),
                                            ("8.5.2.2", 17), ("8.6.1", 17), ("10.3.0", 0)])
def test_onnx_opset_limit_per_parser(version, limit):
    assert trt_policy.max_onnx_opset(version) == limit
    trt_policy.check_onnx_opset(version, 13, "encoder.onnx")  # the default export opset parses everywhere
    if limit:
        trt_policy.check_onnx_opset(version, limit, "encoder.onnx")
        with pytest.raises(JistEdgeError, match="--opset 13") as info:
            trt_policy.check_onnx_opset(version, limit + 1, "/b/encoder.onnx")
        assert "/b/encoder.onnx" in str(info.value) and "\n" not in str(info.value)
    else:
        trt_policy.check_onnx_opset(version, 18, "encoder.onnx")


def test_unreadable_version():
    with pytest.raises(JistEdgeError, match="version"):
        trt_policy.parse_version("unknown")


def test_int8_refused_without_fast_int8_names_fp16():
    with pytest.raises(JistEdgeError) as info:
        trt_policy.resolve_precision("int8", fast_fp16=True, fast_int8=False, device="NVIDIA Tegra X1")
    message = str(info.value)
    assert "FP16 is the Nano's precision" in message and "--force" in message
    assert "\n" not in message


def test_int8_forced_and_where_fast():
    forced = trt_policy.resolve_precision("int8", fast_fp16=True, fast_int8=False, force=True)
    assert forced.int8 and forced.fp16 and forced.notes
    fast = trt_policy.resolve_precision("int8", fast_fp16=True, fast_int8=True)
    assert fast.name == "int8" and fast.int8 and not fast.notes


def test_best_policy():
    nano = trt_policy.resolve_precision("best", fast_fp16=True, fast_int8=False)
    assert (nano.name, nano.fp16, nano.int8) == ("fp16", True, False)
    orin = trt_policy.resolve_precision("best", fast_fp16=True, fast_int8=True)
    assert (orin.name, orin.fp16, orin.int8) == ("int8", True, True)
    old = trt_policy.resolve_precision("best", fast_fp16=False, fast_int8=False)
    assert (old.name, old.fp16, old.int8) == ("fp32", False, False)
    assert not old.pin_fp32_head and nano.pin_fp32_head and orin.pin_fp32_head


def test_fp32_and_fp16_and_unknown():
    assert not trt_policy.resolve_precision("FP32", True, True).pin_fp32_head
    plan = trt_policy.resolve_precision("fp16", fast_fp16=False, fast_int8=False)
    assert plan.fp16 and plan.notes  # allowed, with a note
    with pytest.raises(JistEdgeError, match="--precision"):
        trt_policy.resolve_precision("int4", True, True)


def test_profile_and_workspace():
    prof = trt_policy.batch_profile((3, 96, 128), 5)
    assert prof == {"min": (1, 3, 96, 128), "opt": (1, 3, 96, 128), "max": (5, 3, 96, 128)}
    with pytest.raises(JistEdgeError, match="--max-batch"):
        trt_policy.batch_profile((3, 96, 128), 0)
    assert trt_policy.workspace_bytes(trt_policy.DEFAULT_WORKSPACE_MIB) == 256 * 1024 * 1024
    with pytest.raises(JistEdgeError, match="--workspace"):
        trt_policy.workspace_bytes(4)


def test_split_batches_cover_everything_once():
    chunks = trt_policy.split_batches(12, 5)
    assert chunks == [(0, 5), (5, 10), (10, 12)]
    assert trt_policy.split_batches(0, 5) == []
    assert sum(b - a for a, b in trt_policy.split_batches(101, 7)) == 101
