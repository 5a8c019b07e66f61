"""Implicit INT8 calibration for the weakly typed path (TensorRT 8.x): entropy calibrator + cache.

TensorRT 10.1 deprecated the calibrators and 11 removed them; from 10 on jist-edge
builds INT8 from the Q/DQ ONNX (``calibration.qdq``) instead.

TensorRT calls the calibrator from C++ during ``build_serialized_network``: an
exception there cannot travel back through it. ``BatchFeeder`` (plain Python) keeps the
first error for the build to raise, tells TensorRT the data has ended, and owns the one
device buffer, which the build frees on every path.
"""
from typing import Any, Callable, Iterator, List, Optional, Sequence

import numpy as np

from jist_edge.encoder.tensorrt import policy as trt_policy
from jist_edge.encoder.tensorrt.cuda_device import import_pycuda
from jist_edge.encoder.tensorrt.policy import for_tensorrt
from jist_edge.encoder.tensorrt.tensorrt_lib import import_tensorrt
from jist_edge.errors import JistEdgeError


class BatchFeeder(object):
    """Calibration batches (NxCxHxW float32, fixed N) copied one by one into one device buffer.

    ``alloc(nbytes)`` returns the buffer (``int(buffer)`` is its address, ``buffer.free()``
    releases it) and ``copy(buffer, array)`` fills it: pycuda's ``mem_alloc`` and
    ``memcpy_htod`` on the device. ``batches`` is only called when the first batch is
    asked for, so a valid calibration cache means no image is read at all.
    """

    def __init__(self, batches: Callable[[], Iterator[np.ndarray]], batch_shape: Sequence[int],
                 alloc: Callable[[int], Any], copy: Callable[[Any, np.ndarray], None]) -> None:
        self.shape = tuple(int(v) for v in batch_shape)
        self.nbytes = int(np.prod(self.shape)) * 4
        self._batches, self._alloc, self._copy = batches, alloc, copy
        self.buffer = None  # type: Any
        self.iterator = None  # type: Optional[Iterator[np.ndarray]]
        self.batches_served = 0
        self.error = None  # type: Optional[BaseException]

    def next_address(self) -> Optional[int]:
        """The device address of the next batch; None at the end or after an error (kept in ``error``)."""
        if self.error is not None:
            return None
        try:
            if self.iterator is None:
                self.iterator = iter(self._batches())
                self.buffer = self._alloc(self.nbytes)
            batch = next(self.iterator, None)
            if batch is None:
                return None  # no more data: TensorRT computes the scales
            batch = np.ascontiguousarray(batch, dtype=np.float32)
            if batch.shape != self.shape:
                raise JistEdgeError("calibration batch has shape {}, expected {}".format(batch.shape, self.shape))
            self._copy(self.buffer, batch)
            self.batches_served += 1
            return int(self.buffer)
        except Exception as exc:  # noqa: BLE001 - raised by the build after TensorRT returns
            self.error = exc
            return None

    def guard(self, call: Callable[..., Any], *args: Any) -> Any:
        """``call(*args)``, or None with the exception kept in ``error``."""
        try:
            return call(*args)
        except Exception as exc:  # noqa: BLE001
            if self.error is None:
                self.error = exc
            return None

    def free(self) -> None:
        """Release the device buffer (call while the CUDA context is current); idempotent."""
        buffer, self.buffer = self.buffer, None
        if buffer is not None:
            buffer.free()


@for_tensorrt("8.0", "10.0")
def make_entropy_calibrator(
    batches: Callable[[], Iterator[np.ndarray]],
    batch_shape: Sequence[int],
    read_cache: Callable[[], Optional[bytes]],
    write_cache: Callable[[bytes], None],
) -> Any:
    """An IInt8EntropyCalibrator2 fed by ``batches()``, its cache read and written by the callables."""
    trt = import_tensorrt()
    cuda = import_pycuda()
    feeder = BatchFeeder(batches, batch_shape, cuda.mem_alloc, cuda.memcpy_htod)

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.feeder = feeder
            self.shape = feeder.shape

        @property
        def error(self) -> Optional[BaseException]:
            return feeder.error

        def get_batch_size(self) -> int:
            return feeder.shape[0]

        def get_batch(self, names: List[str]) -> Optional[List[int]]:
            address = feeder.next_address()
            return None if address is None else [address]

        def read_calibration_cache(self) -> Optional[bytes]:
            return feeder.guard(read_cache)

        def write_calibration_cache(self, cache: Any) -> None:
            feeder.guard(lambda: write_cache(bytes(cache)))

        def free(self) -> None:
            feeder.free()

    return EntropyCalibrator()


@for_tensorrt("8.0", "10.0")
def attach_calibrator(builder: Any, config: Any, input_name: str, calibrator: Any) -> None:
    """Give the config the calibrator and a calibration profile fixed at its batch shape.

    Calibration runs at kOPT of the calibration profile; the engine's own profile has
    kOPT batch 1, which would not match batches of another size.
    """
    config.int8_calibrator = calibrator
    shapes = trt_policy.calibration_profile(calibrator.shape)
    profile = builder.create_optimization_profile()
    profile.set_shape(input_name, shapes["min"], shapes["opt"], shapes["max"])
    if not config.set_calibration_profile(profile):
        raise JistEdgeError("TensorRT refused the calibration profile {}".format(shapes["opt"]))


def release_calibrator(calibrator: Any) -> None:
    """Free a calibrator's device buffer if it has one (no-op for None)."""
    free = getattr(calibrator, "free", None)
    if free is not None:
        free()
