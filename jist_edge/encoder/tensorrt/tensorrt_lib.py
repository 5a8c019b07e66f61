"""Importing TensorRT: one place, one process-wide logger, no deprecation noise.

TensorRT is imported only when a function here is called, so every module of
``jist_edge.encoder.tensorrt`` imports on machines without it.
"""
import contextlib
import traceback
import warnings
from typing import Any, Iterator, List

from jist_edge.errors import JistEdgeError


def import_tensorrt():
    try:
        import tensorrt
    except ImportError as exc:
        raise JistEdgeError(
            "TensorRT is not importable ({}): on a Jetson it comes with JetPack "
            "(python3-libnvinfer); elsewhere install NVIDIA's tensorrt wheel".format(exc)
        )
    return tensorrt


def tensorrt_version(trt: Any) -> str:
    return str(trt.__version__)


@contextlib.contextmanager
def quiet_deprecations() -> Iterator[None]:
    """Hide the DeprecationWarnings TensorRT 10.x's bindings raise for APIs jist-edge still
    reads there on purpose (e.g. ``device_memory_size`` before 10.13): a user cannot act on them.

    Not for the per-frame path: ``warnings.catch_warnings`` swaps process-wide state.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


_LOGGER = []  # type: List[Any]


def get_logger(trt: Any, verbose: bool = False) -> Any:
    """One process-wide logger: TensorRT keeps a single logger pointer (it warns when a Builder
    or Runtime brings another), and a module-level one can never be collected under it."""
    if not _LOGGER:
        _LOGGER.append(trt.Logger(trt.Logger.WARNING))
    logger = _LOGGER[0]
    logger.min_severity = trt.Logger.VERBOSE if verbose else trt.Logger.WARNING
    return logger


def drop_frames(exc: BaseException) -> None:
    """Clear the locals of the finished frames in ``exc``'s traceback.

    A failed build or load leaves TensorRT objects (builder, network, runtime...) in
    those frames; they must be destroyed while their CUDA context is current, not
    whenever the exception is finally dropped, after the context is gone.
    """
    traceback.clear_frames(exc.__traceback__)
