"""A deserialized engine with page-locked host buffers, device buffers and one stream.

Buffers are sized for the profile's maximum batch once; ``run`` copies the batch in,
executes and copies the descriptors out asynchronously on the stream, then waits for
the stream. Bindings + ``execute_async_v2`` on TensorRT < 8.5, named tensors +
``execute_async_v3`` from 8.5 (the only API in 10 and 11). The same runner loads
weakly and strongly typed engines.
"""
from typing import Any, Callable, Dict, Optional

import numpy as np

from jist_edge.encoder.tensorrt import policy as trt_policy
from jist_edge.encoder.tensorrt.cuda_device import CudaDevice, import_pycuda
from jist_edge.encoder.tensorrt.policy import for_tensorrt
from jist_edge.encoder.tensorrt.tensorrt_lib import drop_frames, get_logger, import_tensorrt, quiet_deprecations
from jist_edge.errors import JistEdgeError


def _one_each(inputs: Any, outputs: Any) -> None:
    if len(inputs) != 1 or len(outputs) != 1:
        raise JistEdgeError("engine has {} inputs and {} outputs, expected 1 and 1".format(len(inputs), len(outputs)))


@for_tensorrt("8.5")
def _io_named(trt: Any, engine: Any) -> Dict[str, Any]:
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
    outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
    _one_each(inputs, outputs)
    in_name, out_name = inputs[0], outputs[0]
    return {
        "in_name": in_name, "out_name": out_name,
        "max_input_shape": tuple(engine.get_tensor_profile_shape(in_name, 0)[2]),
        "out_tail": tuple(engine.get_tensor_shape(out_name))[1:],
        "in_dtype": trt.nptype(engine.get_tensor_dtype(in_name)),
        "out_dtype": trt.nptype(engine.get_tensor_dtype(out_name)),
    }


@for_tensorrt("8.0", "8.5")
def _io_bindings(trt: Any, engine: Any) -> Dict[str, Any]:
    count = engine.num_bindings
    inputs = [i for i in range(count) if engine.binding_is_input(i)]
    outputs = [i for i in range(count) if not engine.binding_is_input(i)]
    _one_each(inputs, outputs)
    in_index, out_index = inputs[0], outputs[0]
    return {
        "in_index": in_index, "out_index": out_index, "bindings": count,
        "in_name": engine.get_binding_name(in_index), "out_name": engine.get_binding_name(out_index),
        "max_input_shape": tuple(engine.get_profile_shape(0, in_index)[2]),
        "out_tail": tuple(engine.get_binding_shape(out_index))[1:],
        "in_dtype": trt.nptype(engine.get_binding_dtype(in_index)),
        "out_dtype": trt.nptype(engine.get_binding_dtype(out_index)),
    }


@for_tensorrt("8.5")
def _bind_named(context: Any, io: Dict[str, Any], dev_in: int, dev_out: int) -> None:
    context.set_tensor_address(io["in_name"], dev_in)
    context.set_tensor_address(io["out_name"], dev_out)


@for_tensorrt("8.5")
def _execute_named(context: Any, io: Dict[str, Any], shape: Any, dev_in: int, dev_out: int,
                   stream: int, copy_in: Callable[[], None]) -> bool:
    if not context.set_input_shape(io["in_name"], shape):
        raise JistEdgeError("engine rejected input shape {}".format(shape))
    copy_in()
    return bool(context.execute_async_v3(stream_handle=stream))


@for_tensorrt("8.0", "8.5")
def _execute_bindings(context: Any, io: Dict[str, Any], shape: Any, dev_in: int, dev_out: int,
                      stream: int, copy_in: Callable[[], None]) -> bool:
    if not context.set_binding_shape(io["in_index"], shape):
        raise JistEdgeError("engine rejected input shape {}".format(shape))
    copy_in()
    bindings = [0] * io["bindings"]
    bindings[io["in_index"]] = dev_in
    bindings[io["out_index"]] = dev_out
    return bool(context.execute_async_v2(bindings=bindings, stream_handle=stream))


@for_tensorrt("10.13")
def _device_memory_v2(engine: Any) -> int:
    return int(engine.device_memory_size_v2)


@for_tensorrt("8.0", "10.13")
def _device_memory_v1(engine: Any) -> int:
    with quiet_deprecations():  # deprecated during 10.x, where _v2 is not read yet (before 10.13)
        return int(engine.device_memory_size)


# policy.api_for_version -> (describe I/O, execute); policy.device_memory_api -> reader
DESCRIBE_IO = {trt_policy.API_NAMED_V3: _io_named, trt_policy.API_BINDINGS_V2: _io_bindings}
EXECUTE = {trt_policy.API_NAMED_V3: _execute_named, trt_policy.API_BINDINGS_V2: _execute_bindings}
DEVICE_MEMORY = {"device_memory_size_v2": _device_memory_v2, "device_memory_size": _device_memory_v1}


class EngineRunner(object):
    """One engine, its execution context, its buffers and stream; ``close`` frees them all."""

    def __init__(self, engine_bytes: bytes, device: Optional[CudaDevice] = None) -> None:
        self.trt = import_tensorrt()
        self.cuda = import_pycuda()
        self.version = str(self.trt.__version__)
        self.api = trt_policy.api_for_version(self.version)
        self.typing = trt_policy.typing_for_version(self.version)
        self.runtime = self.engine = self.context = self.stream = None  # type: Any
        self.host_in = self.host_out = self.dev_in = self.dev_out = None  # type: Any
        self._own_device = device is None
        self.device = device or CudaDevice()
        try:
            with self.device:
                self._open(engine_bytes)
        except BaseException as exc:  # release what was made so far, under the context
            drop_frames(exc)
            self.close()
            raise

    def _open(self, engine_bytes: bytes) -> None:
        trt, cuda = self.trt, self.cuda
        self.runtime = trt.Runtime(get_logger(trt))
        self.engine = self.runtime.deserialize_cuda_engine(engine_bytes)
        if self.engine is None:
            raise JistEdgeError("TensorRT could not deserialize the engine (built by another TensorRT?)")
        self.context = self.engine.create_execution_context()
        if self.context is None:  # its activation memory could not be allocated
            raise JistEdgeError("TensorRT could not create an execution context ({} bytes of device "
                                "memory needed); close other programs".format(self.engine_memory()))
        self.io = DESCRIBE_IO[self.api](trt, self.engine)
        if any(int(v) < 0 for v in self.io["out_tail"]):
            raise JistEdgeError("engine output {} has a dynamic non-batch axis {}".format(
                self.io["out_name"], self.io["out_tail"]))
        self.max_input_shape = self.io["max_input_shape"]
        self.max_batch = int(self.max_input_shape[0])
        self.host_in = cuda.pagelocked_empty(tuple(self.max_input_shape), dtype=self.io["in_dtype"])
        self.host_out = cuda.pagelocked_empty((self.max_batch,) + tuple(self.io["out_tail"]),
                                              dtype=self.io["out_dtype"])
        self.dev_in = cuda.mem_alloc(self.host_in.nbytes)
        self.dev_out = cuda.mem_alloc(self.host_out.nbytes)
        self.stream = cuda.Stream()
        if self.api == trt_policy.API_NAMED_V3:
            _bind_named(self.context, self.io, int(self.dev_in), int(self.dev_out))

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Nx3xHxW (N <= max_batch) -> NxD float32."""
        n = int(batch.shape[0])
        if n < 1 or n > self.max_batch:
            raise ValueError("batch of {} frames is outside the engine's profile 1..{}".format(n, self.max_batch))
        if tuple(batch.shape[1:]) != tuple(self.max_input_shape[1:]):
            raise JistEdgeError("frames of shape {} do not fit the engine's input {} (rebuild the engine "
                                "for this bundle)".format(tuple(batch.shape[1:]), tuple(self.max_input_shape[1:])))
        cuda = self.cuda
        with self.device:
            host_in = self.host_in[:n]
            host_out = self.host_out[:n]
            np.copyto(host_in, batch, casting="same_kind")
            ok = EXECUTE[self.api](
                self.context, self.io, (n,) + tuple(batch.shape[1:]), int(self.dev_in), int(self.dev_out),
                self.stream.handle, lambda: cuda.memcpy_htod_async(self.dev_in, host_in, self.stream))
            if not ok:
                raise JistEdgeError("TensorRT execution failed for a batch of {}".format(n))
            cuda.memcpy_dtoh_async(host_out, self.dev_out, self.stream)
            self.stream.synchronize()
            return np.array(host_out, dtype=np.float32, copy=True)

    def engine_memory(self) -> int:
        """Device memory the engine's execution context needs (activations), in bytes."""
        return DEVICE_MEMORY[trt_policy.device_memory_api(self.version)](self.engine)

    def memory(self) -> Dict[str, int]:
        """Device memory this runner holds: engine activations plus I/O buffers."""
        info = {
            "engine_device_memory_bytes": self.engine_memory(),
            "io_buffer_bytes": int(self.host_in.nbytes + self.host_out.nbytes),
        }
        info.update(self.device.memory())
        return info

    def close(self) -> None:
        """Free everything this runner made, whatever ``__init__`` got to; a second close does nothing.

        pycuda frees buffers and streams only where their context can be made current
        (else it leaks them silently), and TensorRT objects need it too: free all here.
        """
        if self.device.cuda_context is not None:
            with self.device:
                if self.stream is not None:
                    self.stream.synchronize()
                for buffer in (self.dev_in, self.dev_out):
                    if buffer is not None:
                        buffer.free()
                for host in (self.host_in, self.host_out):
                    allocation = getattr(host, "base", None)  # pagelocked_empty's HostAllocation
                    if hasattr(allocation, "free"):
                        allocation.free()
                self.dev_in = self.dev_out = self.host_in = self.host_out = self.stream = None
                self.context = self.engine = self.runtime = None  # destroyed here, context current
        if self._own_device:
            self.device.close()
