"""The one module that imports ``tensorrt`` and ``pycuda``: build, load and run engines.

Written to the TensorRT Python API (8.0-8.4 and 8.5+/10, see ``trt_policy`` for the
version table) and pycuda's driver API. Every decision (which API, which flags,
which layers stay FP32, which shapes) comes from plain functions tested without a
GPU; this module only carries them out.

CUDA contexts are per thread. The runtime captures frames in one thread and may
encode in another, so ``CudaDevice`` creates the context once, pops it, and pushes it
around every CUDA call (``with device:``), under a lock, in whichever thread calls.
"""
import os
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np

from jist_edge.engines import policy as trt_policy
from jist_edge.errors import JistEdgeError
from jist_edge.engines.fp32_layers import GraphNode, fp32_head_nodes
from jist_edge.fileio import write_bytes_atomic


def import_tensorrt():
    try:
        import tensorrt
    except ImportError as exc:
        raise JistEdgeError(
            "TensorRT is not importable ({}): on a Jetson it comes with JetPack "
            "(python3-libnvinfer); elsewhere install NVIDIA's tensorrt wheel".format(exc)
        )
    return tensorrt


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
        self.context = None
        try:
            cuda.init()
            if cuda.Device.count() < 1:
                raise JistEdgeError("pycuda found no CUDA device")
            self.device = cuda.Device(index)
            self.context = self.device.make_context()  # created and pushed ...
            cuda.Context.pop()  # ... and popped, so no thread owns it
        except cuda.Error as exc:  # no driver, no device, out of memory: one line, not a traceback
            reason = str(exc).strip() or type(exc).__name__
            raise JistEdgeError("CUDA device {} is not usable: {}".format(index, reason))
        self._lock = threading.RLock()
        self._depth = 0

    def __enter__(self) -> "CudaDevice":
        self._lock.acquire()
        if self.context is None:
            self._lock.release()
            raise JistEdgeError("the CUDA device was already closed")
        if self._depth == 0:
            self.context.push()
        self._depth += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self.context is not None:  # close() inside ``with`` popped it
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
        """Destroy the context, from whichever thread closes it.

        pycuda's ``detach`` only destroys a context that is current or owned by the
        calling thread (otherwise it leaks it silently), so make it current first;
        ``detach`` of the current context also pops it.
        """
        if self.context is None:
            return
        with self._lock:
            if self._depth == 0:
                self.context.push()
            self.context.detach()
            self.context = None


_LOGGER = []  # type: List[Any]


def _logger(trt, verbose: bool = False):
    """One process-wide logger: TensorRT keeps a single logger pointer (it warns when a Builder
    or Runtime brings another), and a module-level one can never be collected under it."""
    if not _LOGGER:
        _LOGGER.append(trt.Logger(trt.Logger.WARNING))
    logger = _LOGGER[0]
    logger.min_severity = trt.Logger.VERBOSE if verbose else trt.Logger.WARNING
    return logger


def platform_info(device: Optional[CudaDevice] = None) -> Dict[str, Any]:
    """TensorRT version, GPU name, compute capability and fast FP16/INT8 (for doctor and headers)."""
    trt = import_tensorrt()
    trt_policy.check_supported(str(trt.__version__))
    own = device is None
    device = device or CudaDevice()
    try:
        with device:
            builder = trt.Builder(_logger(trt))
            info = {
                "tensorrt": str(trt.__version__),
                "gpu": device.name,
                "compute_capability": device.compute_capability,
                "fast_fp16": bool(builder.platform_has_fast_fp16),
                "fast_int8": bool(builder.platform_has_fast_int8),
            }
            del builder  # TensorRT objects are destroyed while their CUDA context is current
        info.update(device.memory())
        return info
    finally:
        if own:
            device.close()


def network_nodes(trt, network) -> List[GraphNode]:
    """The parsed network's layers as GraphNodes, for the FP32-head rule."""
    nodes = []
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        inputs = [layer.get_input(j) for j in range(layer.num_inputs)]
        outputs = [layer.get_output(j) for j in range(layer.num_outputs)]
        is_float = all(t.dtype in (trt.float32, trt.float16) for t in outputs if t is not None)
        nodes.append(GraphNode(
            layer.name, str(layer.type),
            [t.name for t in inputs if t is not None], [t.name for t in outputs if t is not None],
            is_float=is_float and layer.type != trt.LayerType.CONSTANT,
        ))
    return nodes


def pin_fp32_head(trt, network) -> List[str]:
    """Set precision and output types of the descriptor head to FP32; returns layer names."""
    trunk = {trt.LayerType.CONVOLUTION, trt.LayerType.SCALE, trt.LayerType.ACTIVATION, trt.LayerType.POOLING}
    names = fp32_head_nodes(
        network_nodes(trt, network),
        is_reduce=lambda n: n.kind == str(trt.LayerType.REDUCE),
        is_trunk=lambda n: n.kind in {str(t) for t in trunk},
    )
    wanted = set(names)
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if layer.name in wanted:
            layer.precision = trt.float32
            for j in range(layer.num_outputs):
                layer.set_output_type(j, trt.float32)
    return names


def _parse_onnx(trt, builder, logger, onnx_path: str):
    version = str(trt.__version__)
    flags = 0
    if trt_policy.needs_explicit_batch_flag(version):
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    with open(onnx_path, "rb") as handle:
        ok = parser.parse(handle.read())
    if not ok:
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise JistEdgeError("TensorRT cannot parse {}: {}".format(onnx_path, "; ".join(errors) or "unknown error"))
    # keep the parser alive as long as the network (it owns the weights)
    return network, parser


def _set_workspace(trt, config, nbytes: int) -> None:
    if trt_policy.workspace_api_for_version(str(trt.__version__)) == "memory_pool_limit":
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, nbytes)
    else:
        config.max_workspace_size = nbytes


def _precision_flag(trt, version: str):
    """OBEY_PRECISION_CONSTRAINTS (8.2+), or STRICT_TYPES where a build lacks it."""
    name = trt_policy.precision_constraint_flag(version)
    flag = getattr(trt.BuilderFlag, name, None)
    return flag if flag is not None else trt.BuilderFlag.STRICT_TYPES


def _load_timing_cache(config, path: str):
    """The timing cache from ``path``, or an empty one when it is missing or unreadable."""
    blob = b""
    if os.path.isfile(path):
        with open(path, "rb") as handle:
            blob = handle.read()
    cache = None
    if blob:
        try:
            cache = config.create_timing_cache(blob)
        except (RuntimeError, TypeError, ValueError):  # a truncated or foreign cache file
            cache = None
    if cache is None or not config.set_timing_cache(cache, False):  # (cache, ignore_mismatch)
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, False)
    return cache


def _add_calibration_profile(builder, config, input_name: str, calibrator: Any) -> None:
    """Calibration runs at kOPT of this profile, so it is fixed at the calibrator's batch shape."""
    shapes = trt_policy.calibration_profile(calibrator.shape)
    profile = builder.create_optimization_profile()
    profile.set_shape(input_name, shapes["min"], shapes["opt"], shapes["max"])
    if not config.set_calibration_profile(profile):
        raise JistEdgeError("TensorRT refused the calibration profile {}".format(shapes["opt"]))


def build_engine(
    onnx_path: str,
    plan: "trt_policy.PrecisionPlan",
    profile_shapes: Dict[str, Sequence[int]],
    workspace_mib: int = trt_policy.DEFAULT_WORKSPACE_MIB,
    calibrator: Any = None,
    timing_cache: Optional[str] = None,
    device: Optional[CudaDevice] = None,
    verbose: bool = False,
) -> Dict[str, Any]:
    """Parse ONNX, configure, build; returns {"engine": bytes, "fp32_layers": [...], ...}.

    ``calibrator`` comes from ``make_entropy_calibrator`` (TensorRT < 10); for TensorRT 10
    pass a Q/DQ ONNX as ``onnx_path`` instead (its scales make the INT8 flag enough).
    """
    trt = import_tensorrt()
    version = str(trt.__version__)
    trt_policy.check_supported(version)
    own = device is None
    device = device or CudaDevice()
    try:
        with device:
            logger = _logger(trt, verbose)
            builder = trt.Builder(logger)
            network, parser = _parse_onnx(trt, builder, logger, onnx_path)
            config = builder.create_builder_config()
            _set_workspace(trt, config, trt_policy.workspace_bytes(workspace_mib))
            profile = builder.create_optimization_profile()
            input_name = network.get_input(0).name
            profile.set_shape(input_name, tuple(profile_shapes["min"]), tuple(profile_shapes["opt"]),
                              tuple(profile_shapes["max"]))
            config.add_optimization_profile(profile)
            pinned = []  # type: List[str]
            if plan.fp16:
                config.set_flag(trt.BuilderFlag.FP16)
            if plan.int8:
                config.set_flag(trt.BuilderFlag.INT8)
                if calibrator is not None:
                    config.int8_calibrator = calibrator
                    if trt_policy.uses_calibration_profile(version):
                        _add_calibration_profile(builder, config, input_name, calibrator)
            if plan.pin_fp32_head:
                pinned = pin_fp32_head(trt, network)
                if pinned:
                    config.set_flag(_precision_flag(trt, version))
            cache = _load_timing_cache(config, timing_cache) if timing_cache else None
            serialized = builder.build_serialized_network(network, config)
            failure = getattr(calibrator, "error", None)
            if failure is not None:  # raised inside get_batch, where TensorRT cannot pass it on
                raise failure
            if serialized is None:
                raise JistEdgeError(
                    "TensorRT could not build an engine from {} (see the TensorRT log above); on a "
                    "4 GB Jetson try a smaller --workspace or close other programs".format(onnx_path)
                )
            engine = bytes(serialized)
            if cache is not None:
                write_bytes_atomic(timing_cache, bytes(config.get_timing_cache().serialize()))
            # TensorRT objects are destroyed here, while their CUDA context is current
            del serialized, cache, config, network, parser, builder
            if hasattr(calibrator, "free"):
                calibrator.free()
            return {
                "engine": engine,
                "fp32_layers": pinned,
                "input_name": input_name,
                "tensorrt": version,
                "gpu": device.name,
                "compute_capability": device.compute_capability,
            }
    finally:
        if own:
            device.close()


def make_entropy_calibrator(
    batches: Callable[[], Iterator[np.ndarray]],
    batch_shape: Sequence[int],
    read_cache: Callable[[], Optional[bytes]],
    write_cache: Callable[[bytes], None],
):
    """An IInt8EntropyCalibrator2 fed by ``batches()`` (NxCxHxW float32, fixed N).

    ``batches`` is only called when TensorRT asks for data, i.e. when ``read_cache``
    returned nothing; a valid cache means no image is read at all. TensorRT calls
    these methods from C++ during ``build_serialized_network``: an exception there
    cannot travel back through it, so it is kept in ``error`` (build_engine raises it)
    and TensorRT is told the data has ended.
    """
    trt = import_tensorrt()
    cuda = import_pycuda()

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.shape = tuple(int(v) for v in batch_shape)
            self.nbytes = int(np.prod(self.shape)) * 4
            self.device_input = None
            self.iterator = None  # type: Optional[Iterator[np.ndarray]]
            self.batches_served = 0
            self.error = None  # type: Optional[BaseException]

        def get_batch_size(self) -> int:
            return self.shape[0]

        def get_batch(self, names: List[str]) -> Optional[List[int]]:
            if self.error is not None:
                return None
            try:
                if self.iterator is None:
                    self.iterator = iter(batches())
                    self.device_input = cuda.mem_alloc(self.nbytes)
                batch = next(self.iterator, None)
                if batch is None:
                    return None  # no more data: TensorRT computes the scales
                batch = np.ascontiguousarray(batch, dtype=np.float32)
                if batch.shape != self.shape:
                    raise JistEdgeError("calibration batch has shape {}, expected {}".format(
                        batch.shape, self.shape))
                cuda.memcpy_htod(self.device_input, batch)
                self.batches_served += 1
                return [int(self.device_input)]
            except Exception as exc:  # noqa: BLE001 - re-raised by build_engine
                self.error = exc
                return None

        def read_calibration_cache(self) -> Optional[bytes]:
            try:
                return read_cache()
            except Exception as exc:  # noqa: BLE001
                self.error = exc
                return None

        def write_calibration_cache(self, cache: Any) -> None:
            try:
                write_cache(bytes(cache))
            except Exception as exc:  # noqa: BLE001
                self.error = exc

        def free(self) -> None:
            """Release the device buffer (call while the CUDA context is current)."""
            if self.device_input is not None:
                self.device_input.free()
                self.device_input = None

    return EntropyCalibrator()


class EngineRunner(object):
    """A deserialized engine with page-locked host buffers, device buffers and one stream.

    Buffers are sized for the profile's maximum batch once; ``run`` copies the batch
    in, executes and copies the descriptors out asynchronously on the stream, then
    waits for the stream. Bindings + execute_async_v2 on TensorRT < 8.5, named
    tensors + execute_async_v3 on 8.5+.
    """

    def __init__(self, engine_bytes: bytes, device: Optional[CudaDevice] = None) -> None:
        self.trt = trt = import_tensorrt()
        self.cuda = cuda = import_pycuda()
        self.version = str(trt.__version__)
        self.api = trt_policy.api_for_version(self.version)
        self._own_device = device is None
        self.device = device or CudaDevice()
        with self.device:
            self.runtime = trt.Runtime(_logger(trt))
            self.engine = self.runtime.deserialize_cuda_engine(engine_bytes)
            if self.engine is None:
                raise JistEdgeError("TensorRT could not deserialize the engine (built by another TensorRT?)")
            self.context = self.engine.create_execution_context()
            if self.context is None:  # its activation memory could not be allocated
                raise JistEdgeError("TensorRT could not create an execution context ({} bytes of device "
                                    "memory needed); close other programs".format(
                                        getattr(self.engine, "device_memory_size", "?")))
            self._describe_io()
            self.max_batch = int(self.max_input_shape[0])
            self.host_in = cuda.pagelocked_empty(tuple(self.max_input_shape), dtype=self.in_dtype)
            self.host_out = cuda.pagelocked_empty((self.max_batch,) + tuple(self.out_tail), dtype=self.out_dtype)
            self.dev_in = cuda.mem_alloc(self.host_in.nbytes)
            self.dev_out = cuda.mem_alloc(self.host_out.nbytes)
            self.stream = cuda.Stream()
            if self.api == trt_policy.API_NAMED_V3:
                self.context.set_tensor_address(self.in_name, int(self.dev_in))
                self.context.set_tensor_address(self.out_name, int(self.dev_out))

    def _describe_io(self) -> None:
        trt, engine = self.trt, self.engine
        if self.api == trt_policy.API_NAMED_V3:
            names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
            inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
            outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
            if len(inputs) != 1 or len(outputs) != 1:
                raise JistEdgeError("engine has {} inputs and {} outputs, expected 1 and 1".format(
                    len(inputs), len(outputs)))
            self.in_name, self.out_name = inputs[0], outputs[0]
            self.max_input_shape = tuple(engine.get_tensor_profile_shape(self.in_name, 0)[2])
            self.out_tail = tuple(engine.get_tensor_shape(self.out_name))[1:]
            self.in_dtype = trt.nptype(engine.get_tensor_dtype(self.in_name))
            self.out_dtype = trt.nptype(engine.get_tensor_dtype(self.out_name))
        else:
            count = engine.num_bindings
            inputs = [i for i in range(count) if engine.binding_is_input(i)]
            outputs = [i for i in range(count) if not engine.binding_is_input(i)]
            if len(inputs) != 1 or len(outputs) != 1:
                raise JistEdgeError("engine has {} inputs and {} outputs, expected 1 and 1".format(
                    len(inputs), len(outputs)))
            self.in_index, self.out_index = inputs[0], outputs[0]
            self.in_name = engine.get_binding_name(self.in_index)
            self.out_name = engine.get_binding_name(self.out_index)
            self.max_input_shape = tuple(engine.get_profile_shape(0, self.in_index)[2])
            self.out_tail = tuple(engine.get_binding_shape(self.out_index))[1:]
            self.in_dtype = trt.nptype(engine.get_binding_dtype(self.in_index))
            self.out_dtype = trt.nptype(engine.get_binding_dtype(self.out_index))
        if any(int(v) < 0 for v in self.out_tail):
            raise JistEdgeError("engine output {} has a dynamic non-batch axis {}".format(self.out_name, self.out_tail))

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
            shape = (n,) + tuple(batch.shape[1:])
            if self.api == trt_policy.API_NAMED_V3:
                if not self.context.set_input_shape(self.in_name, shape):
                    raise JistEdgeError("engine rejected input shape {}".format(shape))
                cuda.memcpy_htod_async(self.dev_in, host_in, self.stream)
                ok = self.context.execute_async_v3(stream_handle=self.stream.handle)
            else:
                if not self.context.set_binding_shape(self.in_index, shape):
                    raise JistEdgeError("engine rejected input shape {}".format(shape))
                cuda.memcpy_htod_async(self.dev_in, host_in, self.stream)
                bindings = [0] * self.engine.num_bindings
                bindings[self.in_index] = int(self.dev_in)
                bindings[self.out_index] = int(self.dev_out)
                ok = self.context.execute_async_v2(bindings=bindings, stream_handle=self.stream.handle)
            if not ok:
                raise JistEdgeError("TensorRT execution failed for a batch of {}".format(n))
            cuda.memcpy_dtoh_async(host_out, self.dev_out, self.stream)
            self.stream.synchronize()
            return np.array(host_out, dtype=np.float32, copy=True)

    def memory(self) -> Dict[str, int]:
        """Device memory this runner holds: engine activations plus I/O buffers."""
        info = {
            "engine_device_memory_bytes": int(getattr(self.engine, "device_memory_size", 0)),
            "io_buffer_bytes": int(self.host_in.nbytes + self.host_out.nbytes),
        }
        info.update(self.device.memory())
        return info

    def close(self) -> None:
        if getattr(self, "context", None) is None:
            return
        # pycuda frees buffers and streams only where their context can be made current
        # (else it leaks them silently), and TensorRT objects need it too: free all here
        with self.device:
            self.stream.synchronize()
            self.dev_in.free()
            self.dev_out.free()
            for host in (self.host_in, self.host_out):
                allocation = getattr(host, "base", None)  # pagelocked_empty's HostAllocation
                if hasattr(allocation, "free"):
                    allocation.free()
            self.host_in = self.host_out = None
            self.stream = None
            self.context = None
            self.engine = None
            self.runtime = None
        if self._own_device:
            self.device.close()
