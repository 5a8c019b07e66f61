"""The machine a benchmark ran on: absolute times mean nothing without it."""
import os
import platform
import shutil
import subprocess
import sys
from typing import Any, Dict, Optional

LIBRARIES = ("numpy", "onnxruntime", "onnxruntime-gpu", "hnswlib", "opencv-python-headless", "opencv-python",
             "torch", "tensorrt", "onnx", "matplotlib", "jist-edge")


def _read(path: str) -> Optional[str]:
    try:
        with open(path, "r", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def cpu_model() -> str:
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        if line.lower().startswith(("model name", "hardware", "cpu model")):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def total_ram_mb() -> Optional[float]:
    text = _read("/proc/meminfo") or ""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024.0
    try:
        import psutil

        return psutil.virtual_memory().total / 2 ** 20
    except ImportError:
        return None


def gpu_description() -> Dict[str, Any]:
    """What GPU there is, from the cheapest source that knows."""
    jetson = _read("/proc/device-tree/model")
    if jetson and "jetson" in jetson.lower():
        release = (_read("/etc/nv_tegra_release") or "").splitlines()
        return {"present": True, "name": jetson.strip("\x00 \n"), "l4t": release[0] if release else None}
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        try:
            if torch.cuda.is_available():
                props = torch.cuda.get_device_properties(0)
                return {"present": True, "name": props.name, "memory_mb": props.total_memory / 2 ** 20,
                        "cuda": torch.version.cuda}
        except Exception:
            pass
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.check_output([smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                                          stderr=subprocess.DEVNULL, timeout=10).decode().strip()
            if out:
                return {"present": True, "name": out.splitlines()[0]}
        except (OSError, subprocess.SubprocessError):
            pass
    return {"present": False, "name": "none"}


def library_versions() -> Dict[str, str]:
    try:
        from importlib import metadata
    except ImportError:  # Python < 3.8
        return {}
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def machine_info() -> Dict[str, Any]:
    ram = total_ram_mb()
    gpu = gpu_description()
    return {
        "cpu": cpu_model(),
        "arch": platform.machine(),
        "cores_usable": usable_cores(),
        "cores_total": os.cpu_count() or 1,
        "ram_mb": ram if ram is not None else -1.0,
        "gpu": gpu,
        "os": platform.platform(),
        "python": platform.python_version(),
        "libraries": library_versions(),
    }


def one_line(info: Dict[str, Any]) -> str:
    """"AMD EPYC, 2 cores, 23.4 GiB RAM, no GPU, Linux-..., Python 3.11.7" for report headers."""
    gpu = info["gpu"]["name"] if info["gpu"].get("present") else "no GPU"
    ram = "{:.1f} GiB RAM".format(info["ram_mb"] / 1024.0) if info["ram_mb"] > 0 else "RAM unknown"
    return "{}, {} cores, {}, {}, {}, Python {}".format(
        info["cpu"], info["cores_usable"], ram, gpu, info["os"], info["python"])
