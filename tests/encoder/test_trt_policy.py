"""The TensorRT decisions that are plain functions: API and typing per version, precision, profile."""
import pytest

from jist_edge.cli import doctor
from jist_edge.encoder.tensorrt import policy as trt_policy
from jist_edge.errors import JistEdgeError


@pytest.mark.parametrize("version, api, typing", [
    ("8.0.1.6", trt_policy.API_BINDINGS_V2, "weak"),   # JetPack 4.6.0
    ("8.2.1.8", trt_policy.API_BINDINGS_V2, "weak"),   # JetPack 4.6.1+ (Nano)
    ("8.4.3", trt_policy.API_BINDINGS_V2, "weak"),
    ("8.5.2.2", trt_policy.API_NAMED_V3, "weak"),      # JetPack 5.1
    ("8.6.1", trt_policy.API_NAMED_V3, "weak"),
    ("10.0.1", trt_policy.API_NAMED_V3, "strong"),     # STRONGLY_TYPED exists from here
    ("10.3.0", trt_policy.API_NAMED_V3, "strong"),     # JetPack 6
    ("10.13.0.post1", trt_policy.API_NAMED_V3, "strong"),
    ("11.0.0", trt_policy.API_NAMED_V3, "strong"),     # strongly typed only
    ("11.4.0.1", trt_policy.API_NAMED_V3, "strong"),
])
def test_api_and_typing_for_version(version, api, typing):
    assert trt_policy.api_for_version(version) == api
    assert trt_policy.typing_for_version(version) == typing
    assert trt_policy.int8_method_for_version(version) == ("qdq" if typing == "strong" else "calibrator")
    major = trt_policy.parse_version(version)[0]
    assert trt_policy.network_flag_for_version(version) == (
        "EXPLICIT_BATCH" if major < 10 else "STRONGLY_TYPED" if major == 10 else "")


@pytest.mark.parametrize("choice, version, expected", [
    (trt_policy.workspace_api_for_version, "8.2.1", "max_workspace_size"),
    (trt_policy.workspace_api_for_version, "8.4.1", "memory_pool_limit"),
    (trt_policy.workspace_api_for_version, "10.3.0", "memory_pool_limit"),
    (trt_policy.precision_constraint_flag, "8.0.1", "STRICT_TYPES"),
    (trt_policy.precision_constraint_flag, "8.2.1", "OBEY_PRECISION_CONSTRAINTS"),
    # platform_has_fast_*: deprecated in 10.5, removed in 11 -> the compute-capability table
    (trt_policy.fast_precision_source, "8.2.1", "builder"),
    (trt_policy.fast_precision_source, "10.4.0", "builder"),
    (trt_policy.fast_precision_source, "10.5.0", "compute_capability"),
    (trt_policy.fast_precision_source, "11.0", "compute_capability"),
    # device_memory_size_v2 where the bindings have it (10.13+), device_memory_size before
    (trt_policy.device_memory_api, "10.0.1", "device_memory_size"),
    (trt_policy.device_memory_api, "10.13.0", "device_memory_size_v2"),
    (trt_policy.device_memory_api, "11.1", "device_memory_size_v2"),
])
def test_other_version_switches(choice, version, expected):
    assert choice(version) == expected


@pytest.mark.parametrize("bad", ["7.1.3", "6.0"])
def test_old_tensorrt_refused(bad):
    with pytest.raises(JistEdgeError, match="8.0 or newer"):
        trt_policy.api_for_version(bad)


@pytest.mark.parametrize("newer", ["11.0.0", "11.4.0.1", "12.0"])
def test_tensorrt_11_is_not_refused_and_builds_strongly_typed(newer):
    """Regression: 11 used to be refused outright, although loading engines and FP32 builds work
    there; with the strongly typed path FP16 (an FP16 ONNX) and INT8 (Q/DQ) work too."""
    trt_policy.check_supported(newer)
    assert trt_policy.typing_for_version(newer) == trt_policy.STRONG
    for requested in ("fp32", "fp16", "int8"):
        plan = trt_policy.resolve_precision(requested, fast_fp16=True, fast_int8=True)
        recipe = trt_policy.build_recipe(plan, trt_policy.typing_for_version(newer))
        assert recipe.flags == () and not recipe.pin_fp32_head and not recipe.calibrator
        assert recipe.onnx == {"fp32": "encoder", "fp16": "fp16", "int8": "qdq"}[requested]


def test_weak_recipes_keep_the_8x_behaviour():
    nano = trt_policy.resolve_precision("best", fast_fp16=True, fast_int8=False)
    recipe = trt_policy.build_recipe(nano, trt_policy.WEAK)
    assert (recipe.flags, recipe.pin_fp32_head, recipe.onnx, recipe.calibrator) == (("FP16",), True, "encoder", False)
    orin = trt_policy.build_recipe(trt_policy.resolve_precision("int8", True, True), trt_policy.WEAK)
    assert orin.flags == ("FP16", "INT8") and orin.pin_fp32_head and orin.calibrator
    fp32 = trt_policy.build_recipe(trt_policy.resolve_precision("fp32", True, True), trt_policy.WEAK)
    assert fp32.flags == () and not fp32.pin_fp32_head
    with pytest.raises(ValueError):
        trt_policy.build_recipe(nano, "medium")


@pytest.mark.parametrize("cc, fast", [
    ((5, 3), (True, False)),   # Jetson Nano / TX1
    ((6, 1), (False, True)),   # GeForce 10: slow FP16, DP4A INT8
    ((6, 2), (True, False)),   # TX2
    ((7, 2), (True, True)),    # Xavier
    ((8, 7), (True, True)),    # Orin
    ((9, 0), (True, True)),    # H100/H200
    ((5, 2), (False, False)),  # Maxwell desktop
])
def test_fast_precisions_from_compute_capability(cc, fast):
    assert trt_policy.fast_precisions_for_compute_capability(cc) == fast
    assert trt_policy.parse_compute_capability(trt_policy.compute_capability_text(cc)) == cc
    with pytest.raises(JistEdgeError, match="compute capability"):
        trt_policy.parse_compute_capability("sm87")


def test_calibration_profile_is_fixed_at_the_batch_shape():
    # calibration runs at kOPT of the calibration profile: it must equal the batches' shape
    prof = trt_policy.calibration_profile((4, 3, 96, 128))
    assert prof["min"] == prof["opt"] == prof["max"] == (4, 3, 96, 128)
    engine = trt_policy.batch_profile((3, 96, 128), 5)
    assert prof["opt"] != engine["opt"]  # the engine's own profile is tuned for batch 1
    for bad in [(), (0, 3, 96, 128), (2, 3, -1, 128)]:
        with pytest.raises(JistEdgeError, match="calibration batch shape"):
            trt_policy.calibration_profile(bad)


@pytest.mark.parametrize("version, limit", [("8.0.1.6", 13), ("8.2.1.8", 13), ("8.4.3", 17), ("8.4.1", 17),
                                            ("8.5.2.2", 17), ("8.6.1", 17), ("10.3.0", 0), ("11.1", 0)])
def test_onnx_opset_limit_per_parser(version, limit):
    # regression: 8.4 parses up to opset 17 (onnx-tensorrt 8.4 operators.md), not 13
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
    assert trt_policy.in_range("10.13.0.post1", ("10.13", None))
    assert not trt_policy.in_range("10.0.1", ("10.13", None))
    assert trt_policy.in_range("8.6.1", ("8.0", "10.0")) and not trt_policy.in_range("10.0", ("8.0", "10.0"))


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
    with pytest.raises(JistEdgeError, match="--trt-workspace"):
        trt_policy.workspace_bytes(4)


def test_split_batches_cover_everything_once():
    chunks = trt_policy.split_batches(12, 5)
    assert chunks == [(0, 5), (5, 10), (10, 12)]
    assert trt_policy.split_batches(0, 5) == []
    assert sum(b - a for a, b in trt_policy.split_batches(101, 7)) == 101


@pytest.mark.parametrize("version, typing", [("8.2.1.8", "weak"), ("10.3.0", "strong"), ("11.1.0", "strong")])
def test_doctor_reports_the_typing_path(version, typing):
    info = doctor.tensorrt_report(version)
    assert info["typing"] == typing and info["path"].startswith(typing + "ly typed")
    assert info["int8_method"] == ("qdq" if typing == "strong" else "calibrator")
    old = doctor.tensorrt_report("7.1.3")
    assert old["path"].startswith("none") and "8.0 or newer" in old["path"]


def test_doctor_says_when_tensorrt_is_absent():
    report = doctor.collect()
    if report["tensorrt"]["installed"]:
        pytest.skip("TensorRT is installed here")
    assert report["tensorrt"]["path"] == "none (TensorRT is absent)"
    assert ("TensorRT path", "none (TensorRT is absent)") in doctor.rows(report)
