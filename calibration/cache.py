"""The INT8 calibration cache, keyed to the bundle and the calibration set.

TensorRT's calibrator asks for a cache before it asks for images; when this cache
holds data for the same bundle, calibration set (file names, sizes, mtimes, seed,
frame count, input size) and TensorRT version, the images are never decoded. The
cache is written atomically with a JSON sidecar naming its key, and a cache whose
sidecar does not match (or whose bytes do not match the sidecar's sha256) is ignored
and rewritten, never used.
"""
import hashlib
import json
import os
from typing import Any, Callable, Dict, Optional

from jist_edge.errors import JistEdgeError
from jist_edge.fileio import sha256_bytes, write_bytes_atomic, write_json_atomic

FORMAT = "jist-edge-calibration-cache"


def calibration_key(bundle_id: str, set_identity: Dict[str, Any], extra: Optional[Dict[str, Any]] = None) -> str:
    content = {"bundle_id": bundle_id, "set": set_identity, "extra": extra or {}}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode("utf-8")).hexdigest()[:16]


class CalibrationCache(object):
    """``<dir>/calibration-<key>.cache`` plus ``.json`` sidecar."""

    def __init__(self, directory: str, key: str, describe: Optional[Dict[str, Any]] = None) -> None:
        self.directory = os.path.abspath(directory)
        self.key = key
        self.describe = describe or {}
        self.path = os.path.join(self.directory, "calibration-{}.cache".format(key))
        self.hits = 0
        self.writes = 0

    @property
    def sidecar(self) -> str:
        return self.path + ".json"

    def read(self) -> Optional[bytes]:
        """The cached bytes if present and valid for this key, else None."""
        if not (os.path.isfile(self.path) and os.path.isfile(self.sidecar)):
            return None
        try:
            with open(self.sidecar, "r") as handle:
                meta = json.load(handle)
            with open(self.path, "rb") as handle:
                data = handle.read()
        except (IOError, OSError, ValueError):
            return None
        if meta.get("format") != FORMAT or meta.get("key") != self.key or meta.get("sha256") != sha256_bytes(data):
            return None
        self.hits += 1
        return data

    def write(self, data: bytes) -> None:
        if not data:
            raise JistEdgeError("refusing to write an empty calibration cache {}".format(self.path))
        write_bytes_atomic(self.path, bytes(data))
        meta = {"format": FORMAT, "key": self.key, "sha256": sha256_bytes(bytes(data)), "bytes": len(data)}
        meta.update({"describe": self.describe})
        write_json_atomic(self.sidecar, meta)
        self.writes += 1

    def get_or_make(self, make: Callable[[], bytes]) -> bytes:
        """Cached bytes, or ``make()`` stored atomically (``make`` reads the images)."""
        data = self.read()
        if data is None:
            data = make()
            self.write(data)
        return data


def cache_for(directory: str, bundle, calibration_set, extra: Optional[Dict[str, Any]] = None) -> CalibrationCache:
    identity = calibration_set.identity()
    key = calibration_key(bundle.bundle_id, identity, extra)
    return CalibrationCache(directory, key, {"bundle_id": bundle.bundle_id, "set": identity, "extra": extra or {}})
