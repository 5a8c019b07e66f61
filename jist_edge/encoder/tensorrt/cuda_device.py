"""One CUDA context (pycuda), usable from any thread.

CUDA contexts are per thread. The runtime captures frames in one thread and may
encode in another, so ``CudaDevice`` creates the context once, pops it, and pushes it
around every CUDA call (``with device:``), under a lock, in whichever thread calls.
"""
import threading
from typing import Any, Dict

from jist_edge.encoder.tensorrt import policy as trt_policy
from jist_edge.errors import JistEdgeError


def import_pycuda():
    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        raise JistEdgeError(
            "pycuda is not importable ({}): pip install pycuda (needs the CUDA toolkit, "
            "e.g. export PATH=/usr/local/cuda/bin:$PATH on a Jetson)".format(exc)
        )
    return cuda


class CudaDevice(object):
    """One CUDA context, made current in the calling thread only while in use."""

    def __init__(self, index: int = 0) -> None:
        cuda = import_pycuda()
        self._cuda = cuda
        self._lock = threading.RLock()
        self._depth = 0
        self.cuda_context = None
        try:
            cuda.init()
            if cuda.Device.count() < 1:
                raise JistEdgeError("pycuda found no CUDA device")
            self.device = cuda.Device(index)
            self.cuda_context = self.device.make_context()  # created and pushed ...
            cuda.Context.pop()  # ... and popped, so no thread owns it
        except cuda.Error as exc:  # no driver, no device, out of memory: one line, not a traceback
            reason = str(exc).strip() or type(exc).__name__
            raise JistEdgeError("CUDA device {} is not usable: {}".format(index, reason))

    def __enter__(self) -> "CudaDevice":
        self._lock.acquire()
        if self.cuda_context is None:
            self._lock.release()
            raise JistEdgeError("the CUDA device was already closed")
        if self._depth == 0:
            self.cuda_context.push()
        self._depth += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self.cuda_context is not None:  # close() inside ``with`` popped it
                self._cuda.Context.pop()
        finally:
            self._lock.release()

    @property
    def name(self) -> str:
        return str(self.device.name())

    @property
    def compute_capability(self) -> str:
        return trt_policy.compute_capability_text(self.device.compute_capability())

    def memory(self) -> Dict[str, int]:
        """Free and total device memory in bytes (shared with the CPU on a Jetson)."""
        with self:
            free, total = self._cuda.mem_get_info()
        return {"free_bytes": int(free), "total_bytes": int(total)}

    def close(self) -> None:
        """Destroy the context, from whichever thread closes it; a second close does nothing.

        pycuda's ``detach`` only destroys a context that is current or owned by the
        calling thread (otherwise it leaks it silently), so make it current first;
        ``detach`` of the current context also pops it. The None check is inside the
        lock: two threads closing at once must not both detach.
        """
        with self._lock:
            if self.cuda_context is None:
                return
            if self._depth == 0:
                self.cuda_context.push()
            cuda_context, self.cuda_context = self.cuda_context, None
            cuda_context.detach()
