"""Resident and GPU memory: what a 4 GB Jetson Nano can afford is the question.

Peak resident memory comes from the kernel (VmHWM in /proc/self/status, else
getrusage). On Linux the peak can be reset (``/proc/self/clear_refs``), so one process
can measure the peak of each section; where that is impossible the peak covers the
whole process so far and the result says so.
"""
import json
import os
import re
import resource
import shutil
import subprocess
import sys
from typing import Any, Dict, Optional, Sequence

_STATUS = "/proc/self/status"


def _status_kb(field: str) -> Optional[int]:
    try:
        with open(_STATUS, "r") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def current_rss_mb() -> float:
    kb = _status_kb("VmRSS")
    if kb is None:
        try:
            import psutil

            return psutil.Process().memory_info().rss / 2 ** 20
        except ImportError:
            return float(peak_rss_mb())
    return kb / 1024.0


def peak_rss_mb() -> float:
    """Peak resident set size of this process (since start or the last reset), MiB."""
    kb = _status_kb("VmHWM")
    if kb is not None:
        return kb / 1024.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / 2 ** 20 if sys.platform == "darwin" else peak / 1024.0


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


class PeakRss(object):
    """Context manager measuring the peak RSS of a section: ``with PeakRss() as m: ...; m.result``."""

    def __init__(self) -> None:
        self.result: Dict[str, Any] = {}

    def __enter__(self) -> "PeakRss":
        self._isolated = reset_peak_rss()
        self._before = current_rss_mb()
        return self

    def __exit__(self, *exc: Any) -> None:
        peak = peak_rss_mb()
        self.result = {
            "rss_before_mb": self._before,
            "peak_rss_mb": peak,
            "peak_growth_mb": max(0.0, peak - self._before),
            "section_isolated": bool(self._isolated),
        }


def run_fresh_process(module: str, args: Sequence[str], out: str, what: str) -> Dict[str, Any]:
    """``python -m module args`` in a fresh process, so its memory is the runtime's alone; its JSON result.

    The module writes its result to ``out``; a failure raises JistEdgeError with its last line."""
    from jist_edge.errors import JistEdgeError

    proc = subprocess.Popen([sys.executable, "-m", module] + list(args) + ["--out", out], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    output = proc.communicate()[0].decode("utf-8", "replace")
    if proc.returncode != 0:
        raise JistEdgeError("the {} process failed: {}".format(what, output.strip().splitlines()[-1:]))
    with open(out) as handle:
        return json.load(handle)


def gpu_memory() -> Dict[str, Any]:
    """GPU memory figures where they can be read, else ``{"available": False, "reason": ...}``."""
    torch_cuda = _torch_cuda_memory()
    if torch_cuda is not None:
        return torch_cuda
    tegra = tegrastats_memory()
    if tegra is not None:
        return tegra
    reason = "no CUDA device visible to torch and no tegrastats (not a Jetson)"
    if shutil.which("nvidia-smi") is None and not os.path.exists("/etc/nv_tegra_release"):
        reason = "no NVIDIA GPU on this machine (no nvidia-smi, not a Jetson)"
    return {"available": False, "reason": reason}


def _torch_cuda_memory() -> Optional[Dict[str, Any]]:
    if "torch" not in sys.modules:
        return None
    torch = sys.modules["torch"]
    try:
        if not torch.cuda.is_available():
            return None
        return {
            "available": True,
            "source": "torch.cuda",
            "device": torch.cuda.get_device_name(0),
            "max_allocated_mb": torch.cuda.max_memory_allocated() / 2 ** 20,
            "max_reserved_mb": torch.cuda.max_memory_reserved() / 2 ** 20,
        }
    except Exception:  # a broken CUDA install should not stop the benchmark
        return None


_TEGRA_RAM = re.compile(r"RAM (\d+)/(\d+)MB")


def tegrastats_memory(timeout_s: float = 3.0) -> Optional[Dict[str, Any]]:
    """One tegrastats sample on a Jetson: RAM is shared by CPU and GPU there."""
    exe = shutil.which("tegrastats")
    if exe is None:
        return None
    try:
        proc = subprocess.Popen([exe, "--interval", "500"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    except OSError:
        return None
    try:
        line = proc.stdout.readline().decode("utf-8", "replace") if proc.stdout else ""
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
    match = _TEGRA_RAM.search(line)
    if not match:
        return None
    return {
        "available": True,
        "source": "tegrastats (CPU and GPU share this memory)",
        "shared_ram_used_mb": float(match.group(1)),
        "shared_ram_total_mb": float(match.group(2)),
    }
