"""Map building on Ray workers: the frames of a long route encoded in shards, in parallel.

Host side only, and optional (``pip install 'jist-edge[cluster]'``): Ray is imported inside
functions, never by the runtime's normal paths. The driver reads the route exactly as a
local build does (same frame checks, positions, skipped frames), cuts the usable frames into
shards of whole encoder batches and sends them to the workers with the model bundle's files;
each worker writes the bundle to a private folder, verifies it (checksums) with
``load_bundle``, encodes its shard in order with ONNX Runtime in the same batches as a
local build would, and returns the frame descriptors. The driver gathers them in order
and writes the map with the same code as a local build, so the files are the same bytes.

A worker that dies mid-shard is retried by Ray (``max_retries``); when the retries run out
the build fails with one line and nothing is written (the map is written only after every
shard is back).
"""
import os
import shutil
import tempfile
from typing import Any, Callable, Dict, Iterable, List, Optional

import numpy as np

from jist_edge.errors import JistEdgeError

DEFAULT_SHARD_FRAMES = 256
DEFAULT_RETRIES = 3
INSTALL_HINT = ("map build --ray needs Ray, which is not installed: pip install 'jist-edge[cluster]' "
                "(or pip install ray) on this machine and on every node of the cluster")

_WORKER_STATE = {}  # type: Dict[str, Any]  # per worker process: the bundle id -> (folder, bundle, encoder)


def import_ray() -> Any:
    """The ray module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise JistEdgeError(INSTALL_HINT)
    return ray


def start_local(num_cpus: int, attempts: int = 3) -> Any:
    """A local Ray instance with ``num_cpus`` CPUs (tests, benchmarks). Ray 2.60 gives its raylet a
    fixed 30 s to register, which a busy 2-core machine can miss: a failed start is tried again."""
    ray = import_ray()
    for attempt in range(attempts):
        try:
            ray.init(num_cpus=int(num_cpus), include_dashboard=False, log_to_driver=False)
            return ray
        except Exception:  # Ray raises RuntimeError, ConnectionError, TimeoutError ...
            ray.shutdown()
            if attempt == attempts - 1:
                raise
    return ray


def bundle_payload(bundle: Any) -> Dict[str, Any]:
    """Every file of the bundle folder the manifest lists, plus the manifest, as bytes."""
    from jist_edge.bundle import MANIFEST_FILE

    names = sorted(bundle.manifest["files"]) + [MANIFEST_FILE]
    files = {}
    for name in names:
        with open(os.path.join(bundle.path, name), "rb") as handle:
            files[name] = handle.read()
    return {"bundle_id": bundle.bundle_id, "files": files}


def _worker_encoder(payload: Dict[str, Any], threads: int):
    """(bundle, encoder) of this worker process: the bundle written out and verified once."""
    key = payload["bundle_id"]
    if key not in _WORKER_STATE:
        from jist_edge.encoder.onnxruntime.backend import OrtEncoder
        from jist_edge.bundle import load_bundle

        folder = tempfile.mkdtemp(prefix="jist-edge-ray-bundle-")
        for name, data in payload["files"].items():
            with open(os.path.join(folder, os.path.basename(name)), "wb") as handle:
                handle.write(data)
        bundle = load_bundle(folder)  # checksums verified before ONNX Runtime sees a byte
        if bundle.bundle_id != key:
            raise JistEdgeError("the bundle sent to this worker is {}, expected {}".format(bundle.bundle_id, key))
        encoder = OrtEncoder(bundle.encoder_path, providers=["CPUExecutionProvider"], threads=threads)
        _WORKER_STATE[key] = (folder, bundle, encoder)
    return _WORKER_STATE[key][1], _WORKER_STATE[key][2]


def encode_shard(payload: Dict[str, Any], frames: List[np.ndarray], batch_size: int, threads: int) -> np.ndarray:
    """Runs on a worker: one shard of BGR frames -> (n, D) float32, in batches of ``batch_size``."""
    from jist_edge.maps.build import encode_frames
    from jist_edge.encoder.preprocess import Preprocessor

    bundle, encoder = _worker_encoder(payload, threads)
    return encode_frames(encoder, Preprocessor.for_bundle(bundle), frames, batch_size)


class RayEncoderPool(object):
    """An ``encoder`` for maps.build.build_map whose ``encode_stream`` runs on Ray workers.

    ``address``: "auto" (RAY_ADDRESS, else the cluster started on this machine by ``ray start``,
    else a new local instance), or a cluster address (``HOST:6379``, ``ray://HOST:10001``).
    An already initialized Ray (e.g. by the caller) is used as it is.
    """

    name = "ray"

    def __init__(self, bundle: Any, address: str = "auto", batch_size: int = 8,
                 shard_frames: int = DEFAULT_SHARD_FRAMES, max_retries: int = DEFAULT_RETRIES,
                 worker_threads: int = 1) -> None:
        self.ray = import_ray()
        self.owns = not self.ray.is_initialized()
        if self.owns:
            self._connect(address)
        self.batch_size, self.shard_frames = int(batch_size), int(shard_frames)
        self.max_retries, self.worker_threads = int(max_retries), int(worker_threads)
        self.payload = self.ray.put(bundle_payload(bundle))
        self.task = self.ray.remote(encode_shard).options(num_cpus=1, max_retries=self.max_retries)
        self.frames = 0
        self.calls = 0

    def _connect(self, address: str) -> None:
        try:
            if address in (None, "", "auto"):
                self.ray.init(include_dashboard=False, log_to_driver=False)
            else:
                self.ray.init(address=address, log_to_driver=False)
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError ...
            raise JistEdgeError("--ray {}: cannot join a Ray cluster: {}".format(address, _first_line(exc)))

    def workers(self) -> int:
        """CPUs the cluster offers (one shard task per CPU)."""
        return max(1, int(self.ray.cluster_resources().get("CPU", 1)))

    def encode_stream(self, frames: Iterable[np.ndarray], batch_size: int,
                      progress: Optional[Callable[[int], None]] = None) -> np.ndarray:
        """Shards of whole batches to the workers, at most two per CPU in flight, gathered in order."""
        shard = max(1, -(-self.shard_frames // batch_size)) * batch_size  # whole batches: same as a local build
        in_flight = 2 * self.workers()
        pending = []  # type: List[Any]
        done = []  # type: List[np.ndarray]
        chunk = []  # type: List[np.ndarray]
        first = 0
        try:
            for frame in frames:
                chunk.append(frame)
                if len(chunk) == shard:
                    pending.append((first, len(chunk), self.task.remote(self.payload, chunk, batch_size,
                                                                        self.worker_threads)))
                    first, chunk = first + len(chunk), []
                    while len(pending) >= in_flight:
                        done.append(self._collect(pending.pop(0), progress))
            if chunk:
                pending.append((first, len(chunk), self.task.remote(self.payload, chunk, batch_size,
                                                                    self.worker_threads)))
            while pending:
                done.append(self._collect(pending.pop(0), progress))
        except BaseException:
            for _, _, ref in pending:
                self.ray.cancel(ref, force=True)
            raise
        if not done:
            return np.zeros((0, 0), dtype=np.float32)
        return np.concatenate(done, axis=0)

    def _collect(self, item: Any, progress: Optional[Callable[[int], None]]) -> np.ndarray:
        first, count, ref = item
        try:
            out = np.asarray(self.ray.get(ref), dtype=np.float32)
        except self.ray.exceptions.RayError as exc:
            raise JistEdgeError("map build --ray: the shard of frames {}..{} failed after {} retries ({}); no map "
                                "was written".format(first, first + count - 1, self.max_retries, _first_line(exc)))
        if out.shape[0] != count:
            raise JistEdgeError("map build --ray: a worker returned {} descriptors for {} frames".format(
                out.shape[0], count))
        self.frames += count
        self.calls += 1
        if progress is not None:
            progress(count)
        return out

    def close(self) -> None:
        if self.owns and self.ray.is_initialized():
            self.ray.shutdown()
            self.owns = False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    for line in text.splitlines():
        if line.strip():
            return "{}: {}".format(type(exc).__name__, line.strip()[:300])
    return type(exc).__name__


def forget_worker_state() -> None:
    """Drop this process's cached bundles (the worker side; for tests and long-lived drivers)."""
    for folder, _, encoder in _WORKER_STATE.values():
        encoder.close()
        shutil.rmtree(folder, ignore_errors=True)
    _WORKER_STATE.clear()
