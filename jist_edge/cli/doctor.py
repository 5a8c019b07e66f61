"""`jist-edge doctor`: the environment that decides backends and speed, in one report.

Each probe returns a value or a reason; nothing here raises for a missing library,
because "not installed" is exactly what doctor is asked to report.
"""
import os
import platform
import re
import sys
from typing import Any, Dict, List, Optional, Tuple

JETSON_MODEL_FILE = "/proc/device-tree/model"
L4T_RELEASE_FILE = "/etc/nv_tegra_release"


def jetson_model(path: str = JETSON_MODEL_FILE) -> Optional[str]:
    """'NVIDIA Jetson Nano Developer Kit' from the device tree, or None off a Jetson."""
    try:
        with open(path, "rb") as handle:
            text = handle.read().replace(b"\x00", b"").decode("utf-8", "replace").strip()
    except (IOError, OSError):
        return None
    return text or None


def l4t_release(path: str = L4T_RELEASE_FILE) -> Optional[str]:
    """'R32 (release), REVISION: 7.1' -> '32.7.1' (JetPack 4.6.x is L4T 32.7)."""
    try:
        with open(path, "r") as handle:
            first = handle.readline()
    except (IOError, OSError):
        return None
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", first)
    return "{}.{}".format(match.group(1), match.group(2)) if match else first.strip() or None


def _probe_opencv() -> Dict[str, Any]:
    try:
        import cv2
    except ImportError as exc:
        return {"installed": False, "reason": str(exc)}
    from jist_edge.stream.uri import opencv_has_gstreamer

    return {
        "installed": True,
        "version": cv2.__version__,
        "gstreamer": opencv_has_gstreamer(),
        "path": os.path.dirname(getattr(cv2, "__file__", "") or ""),
    }


def _probe_onnxruntime() -> Dict[str, Any]:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        return {"installed": False, "reason": str(exc)}
    return {"installed": True, "version": ort.__version__, "providers": list(ort.get_available_providers())}


def _probe_tensorrt() -> Dict[str, Any]:
    try:
        import tensorrt
    except ImportError as exc:
        return tensorrt_report(None, str(exc))
    return tensorrt_report(str(tensorrt.__version__))


def tensorrt_report(version: Optional[str], reason: str = "") -> Dict[str, Any]:
    """What jist-edge would do with this TensorRT: typing path, execution API, INT8 method."""
    from jist_edge.encoder.tensorrt import policy as trt_policy

    if version is None:
        return {"installed": False, "reason": reason, "path": "none (TensorRT is absent)"}
    info = {"installed": True, "version": version}  # type: Dict[str, Any]
    try:
        info["typing"] = trt_policy.typing_for_version(version)
        info["api"] = trt_policy.api_for_version(version)
        info["int8_method"] = trt_policy.int8_method_for_version(version)
        info["path"] = trt_policy.typing_description(version)
    except Exception as exc:  # an unsupported version is a finding, not a crash
        info["api"] = "unsupported: {}".format(exc)
        info["path"] = "none ({})".format(exc)
    return info


def _probe_cuda() -> Dict[str, Any]:
    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        return {"pycuda": False, "reason": str(exc)}
    info = {"pycuda": True}  # type: Dict[str, Any]
    try:
        info["cuda_build"] = ".".join(str(v) for v in cuda.get_version())
        driver = int(cuda.get_driver_version())
        info["cuda_driver"] = "{}.{}".format(driver // 1000, (driver % 1000) // 10)
    except Exception as exc:
        info["reason"] = str(exc)
    return info


def _probe_gpu(tensorrt_ok: bool, pycuda_ok: bool) -> Dict[str, Any]:
    if not (tensorrt_ok and pycuda_ok):
        return {"probed": False, "reason": "needs tensorrt and pycuda"}
    try:
        from jist_edge.encoder.tensorrt import probe
        info = probe.platform_info()
    except Exception as exc:
        return {"probed": False, "reason": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
    info["probed"] = True
    return info


def _probe_backends() -> Dict[str, Any]:
    from jist_edge.encoder import BACKENDS, available_backends, _module

    why = {}
    for name in BACKENDS:
        try:
            module = _module(name)
            why[name] = "available" if module.is_available() else module.why_unavailable()
        except ImportError as exc:
            why[name] = "cannot import: {}".format(exc)
    names = available_backends()
    return {"available": names, "auto": names[0] if names else None, "status": why}


def _probe_cpu_int8() -> Dict[str, Any]:
    """Whether ONNX Runtime's INT8 encoder pays on this CPU (VNNI / dot product), and its cores."""
    from jist_edge.encoder.cpu_features import int8_support, physical_cores

    info = int8_support()
    info["physical_cores"] = physical_cores()
    return info


def collect() -> Dict[str, Any]:
    import numpy

    trt_info = _probe_tensorrt()
    cuda_info = _probe_cuda()
    report = {
        "python": {"version": platform.python_version(), "executable": sys.executable,
                   "machine": platform.machine()},
        "numpy": numpy.__version__,
        "opencv": _probe_opencv(),
        "onnxruntime": _probe_onnxruntime(),
        "tensorrt": trt_info,
        "cuda": cuda_info,
        "gpu": _probe_gpu(bool(trt_info.get("installed")), bool(cuda_info.get("pycuda"))),
        "jetson": {"model": jetson_model(), "l4t": l4t_release()},
        "backends": _probe_backends(),
        "cpu_int8": _probe_cpu_int8(),
    }
    report["advice"] = advice(report)
    return report


def advice(report: Dict[str, Any]) -> List[str]:
    """Plain-language findings that change what a user should do."""
    tips = []
    on_jetson = bool(report["jetson"]["model"])
    cv = report["opencv"]
    if on_jetson and cv.get("installed") and not cv.get("gstreamer"):
        tips.append("OpenCV {} at {} has no GStreamer: CSI cameras will not open; a pip opencv wheel "
                    "probably shadows JetPack's system cv2 (pip uninstall opencv-python "
                    "opencv-python-headless)".format(cv.get("version"), cv.get("path")))
    if on_jetson and not report["tensorrt"].get("installed"):
        tips.append("TensorRT is not importable from this Python: JetPack's bindings exist only for "
                    "the system Python 3 (3.6 on JetPack 4.6); use it or a venv with "
                    "--system-site-packages")
    if report["tensorrt"].get("installed") and not report["cuda"].get("pycuda"):
        tips.append("TensorRT is present but pycuda is not: pip install pycuda")
    gpu = report["gpu"]
    if gpu.get("probed") and not gpu.get("fast_int8"):
        tips.append("no fast INT8 on {}: build FP16 engines (INT8 is refused unless --force)".format(gpu.get("gpu")))
    cpu = report.get("cpu_int8", {})
    if cpu.get("verdict") in ("fast", "some") and report["backends"]["auto"] == "onnxruntime":
        tips.append("the CPU encoder can run INT8 ({}): `jist-edge calibrate --calibration route.mp4`, then "
                    "`jist-edge run --precision best`".format(", ".join(cpu["dot_product"] or cpu["wide_int"])))
    if report["backends"]["auto"] is None:
        tips.append("no encoder backend is available: pip install onnxruntime")
    return tips


def rows(report: Dict[str, Any]) -> List[Tuple[str, str]]:
    """(item, value) lines for the table."""
    def state(info: Dict[str, Any], key: str = "version") -> str:
        if info.get("installed"):
            return str(info.get(key))
        return "not installed ({})".format(info.get("reason", "?"))

    cv = report["opencv"]
    ort = report["onnxruntime"]
    trt_info = report["tensorrt"]
    cuda = report["cuda"]
    gpu = report["gpu"]
    out = [
        ("Python", "{} ({})".format(report["python"]["version"], report["python"]["machine"])),
        ("numpy", report["numpy"]),
        ("OpenCV", state(cv) + ("" if not cv.get("installed") else
                                ", GStreamer " + ("yes" if cv.get("gstreamer") else "no"))),
        ("ONNX Runtime", state(ort) + ("" if not ort.get("installed") else
                                       " [" + ", ".join(ort.get("providers", [])) + "]")),
        ("TensorRT", state(trt_info) + ("" if not trt_info.get("installed") else
                                        " ({})".format(trt_info.get("api")))),
        ("TensorRT path", trt_info.get("path", "?")),
        ("CUDA", "pycuda not installed ({})".format(cuda.get("reason", "?")) if not cuda.get("pycuda") else
         "build {} / driver {}".format(cuda.get("cuda_build", "?"), cuda.get("cuda_driver", "?"))),
        ("GPU", "not probed ({})".format(gpu.get("reason")) if not gpu.get("probed") else
         "{} (sm {}), fast FP16 {}, fast INT8 {}".format(
             gpu["gpu"], gpu["compute_capability"], "yes" if gpu["fast_fp16"] else "no",
             "yes" if gpu["fast_int8"] else "no")),
        ("Jetson", report["jetson"]["model"] or "not a Jetson"),
    ]
    if report["jetson"]["l4t"]:
        out.append(("L4T", report["jetson"]["l4t"]))
    cpu = report.get("cpu_int8")
    if cpu:
        out.append(("CPU INT8", "{} ({} physical cores): {}".format(cpu["verdict"], cpu["physical_cores"], cpu["why"])))
    backends = report["backends"]
    out.append(("auto backend", backends["auto"] or "none"))
    for name, status in sorted(backends["status"].items()):
        out.append(("  " + name, status))
    return out
