"""Atomic writes and checksums shared by every file the toolkit writes.

Everything we write (bundles, maps, engines, caches, reports) goes to a temporary
name in the same directory and is renamed into place, so an interrupted run never
leaves a half-written file where a good one was.
"""
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from typing import Any, Dict, Iterator

from jist_edge.errors import IntegrityError, JistEdgeError

CHUNK = 1 << 20


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _normal_mode(path: str, directory: bool = False) -> None:
    """mkstemp/mkdtemp create 0600/0700; what we publish gets the usual umask-based mode."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cannot_write(path: str, exc: OSError) -> JistEdgeError:
    return JistEdgeError("cannot write {}: {}".format(path, exc.strerror or exc))


def ensure_parent_dir(path: str) -> str:
    """The folder that will hold ``path``, created if needed; a one-line error if it cannot be."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        blocker = directory
        while blocker and not os.path.exists(blocker):
            blocker = os.path.dirname(blocker)
        if blocker and not os.path.isdir(blocker):
            raise JistEdgeError("cannot write {}: {} is a file, not a folder".format(path, blocker))
        raise _cannot_write(path, exc)
    return directory


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success."""
    directory = ensure_parent_dir(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise _cannot_write(path, exc)
    os.close(fd)
    _normal_mode(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path: str, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def write_json_atomic(path: str, obj: Any) -> None:
    text = json.dumps(obj, indent=2, sort_keys=True) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


def read_json(path: str, what: str = "JSON file") -> Dict[str, Any]:
    """Read a JSON object, turning every failure into a one-line error naming the file."""
    try:
        with open(path, "r", encoding="utf-8") as handle:
            obj = json.load(handle)
    except FileNotFoundError:
        raise JistEdgeError("{} not found: {}".format(what, path))
    except (ValueError, UnicodeDecodeError) as exc:
        raise IntegrityError("{} is not valid JSON: {} ({})".format(what, path, exc))
    if not isinstance(obj, dict):
        raise IntegrityError("{} does not hold a JSON object: {}".format(what, path))
    return obj


def verify_files(directory: str, files: Dict[str, Dict[str, Any]], what: str) -> None:
    """Check size and sha256 of every file a manifest lists, before anything opens it."""
    for name, meta in sorted(files.items()):
        if os.path.basename(name) != name:
            raise IntegrityError("{} manifest lists a path outside its folder: {!r}".format(what, name))
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            raise IntegrityError("{} file missing: {}".format(what, path))
        size = meta.get("bytes")
        if size is not None and os.path.getsize(path) != size:
            raise IntegrityError(
                "{} file {} has {} bytes, the manifest says {}".format(what, path, os.path.getsize(path), size)
            )
        if sha256_file(path) != meta.get("sha256"):
            raise IntegrityError("{} file {} does not match the sha256 in its manifest".format(what, path))


def file_record(path: str) -> Dict[str, Any]:
    return {"sha256": sha256_file(path), "bytes": os.path.getsize(path)}


@contextlib.contextmanager
def staged_directory(final_dir: str) -> Iterator[str]:
    """Build a directory under a temporary name and swap it in at the end.

    The old directory (if any) is moved aside first and deleted only after the new
    one is in place, so a crash at any point leaves either the old or the new one.
    """
    final_dir = os.path.abspath(final_dir)
    parent = ensure_parent_dir(final_dir)
    try:
        stage = tempfile.mkdtemp(prefix="." + os.path.basename(final_dir) + ".", suffix=".staging", dir=parent)
    except OSError as exc:
        raise _cannot_write(final_dir, exc)
    _normal_mode(stage, directory=True)
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    old = None
    if os.path.exists(final_dir):
        old = final_dir + ".old-" + os.path.basename(stage)
        os.replace(final_dir, old)
    os.replace(stage, final_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
