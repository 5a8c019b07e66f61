"""What this machine's TensorRT and GPU can do: version, typing path, GPU, fast FP16/INT8.

Used by ``doctor``, by the engine build (the header's identity) and by ``trt_check``.
"""
from typing import Any, Callable, Dict, Optional, Tuple

from jist_edge.encoder.tensorrt import policy as trt_policy
from jist_edge.encoder.tensorrt.cuda_device import CudaDevice
from jist_edge.encoder.tensorrt.policy import for_tensorrt
from jist_edge.encoder.tensorrt.tensorrt_lib import get_logger, import_tensorrt


@for_tensorrt("8.0", "10.5")
def _fast_from_builder(trt: Any, device: CudaDevice) -> Tuple[bool, bool]:
    """TensorRT's own answer (deprecated in 10.5, gone in 11)."""
    with device:
        builder = trt.Builder(get_logger(trt))
        fast = (bool(builder.platform_has_fast_fp16), bool(builder.platform_has_fast_int8))
        del builder  # TensorRT objects are destroyed while their CUDA context is current
    return fast


def _fast_from_compute_capability(trt: Any, device: CudaDevice) -> Tuple[bool, bool]:
    cc = trt_policy.parse_compute_capability(device.compute_capability)
    return trt_policy.fast_precisions_for_compute_capability(cc)


# policy.fast_precision_source -> reader
FAST_PRECISIONS = {
    "builder": _fast_from_builder,
    "compute_capability": _fast_from_compute_capability,
}  # type: Dict[str, Callable[[Any, CudaDevice], Tuple[bool, bool]]]


def platform_info(device: Optional[CudaDevice] = None) -> Dict[str, Any]:
    """TensorRT version and typing path, GPU name, compute capability, fast FP16/INT8, memory."""
    trt = import_tensorrt()
    version = str(trt.__version__)
    typing = trt_policy.typing_for_version(version)  # refuses TensorRT < 8
    own = device is None
    try:
        device = device or CudaDevice()
        source = trt_policy.fast_precision_source(version)
        fast_fp16, fast_int8 = FAST_PRECISIONS[source](trt, device)
        info = {
            "tensorrt": version,
            "typing": typing,
            "gpu": device.name,
            "compute_capability": device.compute_capability,
            "fast_fp16": fast_fp16,
            "fast_int8": fast_int8,
            "fast_precisions_from": source,
        }
        info.update(device.memory())
        return info
    finally:
        if own and device is not None:
            device.close()
