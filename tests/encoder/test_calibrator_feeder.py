"""The entropy calibrator's plain-Python part: batches in, first error kept, its buffer always freed.

The device buffer here is host memory (a numpy array with the two things the feeder asks
of pycuda's DeviceAllocation: an address and ``free``); TensorRT's side runs in tests/gpu.
"""
import numpy as np

from jist_edge.encoder.tensorrt.calibrator import BatchFeeder, release_calibrator
from jist_edge.errors import JistEdgeError

SHAPE = (2, 3, 4, 5)


class HostBuffer(object):
    def __init__(self, nbytes):
        self.array = np.zeros(nbytes // 4, np.float32)
        self.freed = 0

    def __int__(self):
        return self.array.ctypes.data

    def free(self):
        self.freed += 1


def _feeder(batches):
    made = []

    def alloc(nbytes):
        made.append(HostBuffer(nbytes))
        return made[-1]

    def copy(buffer, batch):
        buffer.array[:] = batch.ravel()

    return BatchFeeder(batches, SHAPE, alloc, copy), made


def test_batches_are_copied_then_the_end_is_signalled():
    data = [np.full(SHAPE, i, np.float32) for i in range(3)]
    feeder, made = _feeder(lambda: iter(data))
    for i in range(3):
        assert feeder.next_address() == int(made[0])
        assert (made[0].array == i).all()
    assert feeder.next_address() is None and feeder.error is None and feeder.batches_served == 3
    assert len(made) == 1  # one buffer for every batch
    release_calibrator(feeder)
    release_calibrator(feeder)  # idempotent
    release_calibrator(None)
    assert made[0].freed == 1 and feeder.buffer is None


def test_a_failing_source_is_kept_and_the_buffer_still_freed():
    """Regression: a calibration source that raised left the device buffer allocated."""
    def batches():
        yield np.zeros(SHAPE, np.float32)
        raise OSError("the calibration video broke")

    feeder, made = _feeder(batches)
    assert feeder.next_address() is not None
    assert feeder.next_address() is None and isinstance(feeder.error, OSError)
    assert feeder.next_address() is None  # TensorRT may ask again: still the end, same error
    release_calibrator(feeder)
    assert made[0].freed == 1


def test_wrong_batch_shape_and_cache_errors_are_kept_not_raised_into_tensorrt():
    feeder, made = _feeder(lambda: iter([np.zeros((1, 3, 4, 5), np.float32)]))
    assert feeder.next_address() is None and isinstance(feeder.error, JistEdgeError)
    assert "expected (2, 3, 4, 5)" in str(feeder.error)
    first = feeder.error
    assert feeder.guard(lambda: 1 / 0) is None and feeder.error is first  # the first error wins
    fresh, _ = _feeder(lambda: iter([]))
    assert fresh.guard(lambda: b"cache") == b"cache"
    assert fresh.guard(lambda: 1 / 0) is None and isinstance(fresh.error, ZeroDivisionError)
