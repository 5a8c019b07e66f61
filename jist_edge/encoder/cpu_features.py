"""What this CPU offers an INT8 encoder: dot-product instructions and physical cores.

ONNX Runtime's INT8 convolutions (U8S8: uint8 activations x int8 weights) are fast
where the CPU multiplies and sums four 8-bit pairs in one instruction: x86 AVX-512
VNNI or AVX-VNNI (``vpdpbusd``), ARM's dot product (``sdot``/``udot``, flag
``asimddp``; Cortex-A75/A55 and later: Xavier's Carmel and Orin's A78AE have it, the
Nano's A57 does not). Without them, x86 AVX2 still runs INT8 with a two-step multiply
(``vpmaddubsw`` + ``vpmaddwd``) and gains less; Linux lists all of them in
/proc/cpuinfo, so no instruction is executed to find out.
"""
import os
import re
from typing import Any, Dict, List, Optional

CPUINFO = "/proc/cpuinfo"

# flag -> what it is; the first group decides "fast", the second "some gain"
DOT_PRODUCT_FLAGS = (
    ("avx512_vnni", "AVX-512 VNNI"),
    ("avx_vnni", "AVX-VNNI"),
    ("amx_int8", "AMX-INT8"),
    ("asimddp", "ARM dot product"),
)
WIDE_INT_FLAGS = (("avx2", "AVX2"), ("asimd", "ARM NEON"))


def cpu_flags(text: Optional[str] = None) -> List[str]:
    """The CPU's feature flags (x86 ``flags``, ARM ``Features``) from /proc/cpuinfo text."""
    if text is None:
        try:
            with open(CPUINFO, "r") as handle:
                text = handle.read()
        except (IOError, OSError):
            return []
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return value.split()
    return []


def int8_support(flags: Optional[List[str]] = None) -> Dict[str, Any]:
    """``{"dot_product": [...], "wide_int": [...], "verdict": "fast"|"some"|"none"|"unknown", "why": ...}``."""
    flags = cpu_flags() if flags is None else flags
    have = set(flags)
    dot = [name for flag, name in DOT_PRODUCT_FLAGS if flag in have]
    wide = [name for flag, name in WIDE_INT_FLAGS if flag in have]
    if not flags:
        verdict, why = "unknown", "no CPU flags readable from {}".format(CPUINFO)
    elif dot:
        verdict, why = "fast", "{}: INT8 should run 2-3x faster than FP32 (ONNX Runtime U8S8)".format(", ".join(dot))
    elif wide:
        verdict, why = "some", ("{} without VNNI/dot product: INT8 gains less than on a CPU with them; "
                                "measure with `jist-edge bench`".format(", ".join(wide)))
    else:
        verdict, why = "none", "no VNNI, dot product or AVX2/NEON: INT8 will not pay"
    return {"dot_product": dot, "wide_int": wide, "verdict": verdict, "why": why}


def physical_cores(text: Optional[str] = None) -> int:
    """Cores this process may use, counting SMT siblings once (ONNX Runtime's intra-op threads).

    x86 lists ``physical id``/``core id`` per logical CPU; ARM boards list no SMT, so
    each logical CPU is a core there. The affinity mask (containers, taskset) caps it."""
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if text is None:
        try:
            with open(CPUINFO, "r") as handle:
                text = handle.read()
        except (IOError, OSError):
            return max(1, allowed)
    pairs = []
    for block in re.split(r"\n\s*\n", text):
        fields = dict((k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in block.splitlines()))
        if "processor" in fields:
            pairs.append((fields.get("physical id"), fields.get("core id")))
    listed = [pair for pair in pairs if None not in pair]
    smt = len(listed) // len(set(listed)) if listed and len(listed) == len(pairs) else 1
    return max(1, allowed // max(1, smt))
