"""Atomic writes and checksums shared by every file the toolkit writes.

Everything we write (bundles, maps, engines, caches, reports) goes to a temporary
name in the same directory and is renamed into place, so an interrupted run never
leaves a half-written file where a good one was.
"""
import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from typing import Any, Callable, Dict, Iterator, Optional

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


def manifest_digest(manifest: Dict[str, Any]) -> str:
    """sha256 of every manifest field but itself: a hand edit anywhere shows (bundles and maps)."""
    rest = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return sha256_bytes(json.dumps(rest, sort_keys=True).encode("utf-8"))


def check_manifest_digest(manifest: Dict[str, Any], where: str, remedy: str) -> None:
    """Refuse a manifest whose own sha256 is missing or does not match its fields."""
    digest = manifest.get("manifest_sha256")
    if not isinstance(digest, str):
        raise IntegrityError("{}: no manifest_sha256 (written by an older jist-edge, or edited); {}".format(
            where, remedy))
    if digest != manifest_digest(manifest):
        raise IntegrityError("{}: manifest_sha256 does not match the manifest (edited or damaged)".format(where))


def _cannot_write(path: str, exc: OSError) -> JistEdgeError:
    return JistEdgeError("cannot write {}: {}".format(path, exc.strerror or exc))


def kept_note(out_dir: str, noun: str) -> str:
    """What a failed or interrupted write of ``out_dir`` leaves: said before the write starts."""
    if os.path.exists(out_dir):
        return "the previous {} in {} was kept".format(noun, out_dir)
    return "no {} was written to {}".format(noun, out_dir)


def write_staged(write: Callable[[str], Any], stage: str, out_dir: str, name: str, kept: str) -> None:
    """``write(path)`` one file into a staging folder; a failure names the final file, its cause
    (disk full...) and what was kept."""
    staged = os.path.join(stage, name)
    try:
        write(staged)
    except OSError as exc:
        raise write_failure(os.path.join(out_dir, name), exc, kept, written=staged)


def resolve_link(path: str, option: str = "output") -> str:
    """The path to write: a symlink is written through to what it points to; a dangling one is refused."""
    path = os.path.abspath(path)
    if os.path.islink(path):
        real = os.path.realpath(path)
        if not os.path.exists(real):
            raise JistEdgeError("{} {} is a symlink to {}, which does not exist; fix or remove the link".format(
                option, path, real))
        return real
    return path


def _special(path: str) -> bool:
    """A device, FIFO or socket (e.g. /dev/stdout): written in place, never replaced by a rename."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


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
    """Yield a temporary path beside ``path``; rename it over ``path`` on success.

    A symlink is written through (the link stays, its target is replaced); a device or
    FIFO such as /dev/stdout is written in place."""
    if _special(path):
        yield path
        return
    path = resolve_link(path)
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
            if not _special(tmp):  # a FIFO or device cannot be fsync'ed
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
            if os.path.lexists(path):  # a FIFO would block the checksum, a device would read forever
                raise IntegrityError("{} file {} is not a regular file".format(what, path))
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


def sweep_leftovers(final_dir: str) -> None:
    """Remove what a writer of ``final_dir`` killed outright (SIGKILL, power loss) left beside it:
    ``.NAME.xxxxxxxx.staging`` folders, and ``.old`` ones; an ``.old`` one is put back first
    when the output itself is missing (the kill fell between the two renames of the swap).
    Only the holder of the output's lock may call this (jist_edge.locks does)."""
    parent, name = os.path.split(os.path.abspath(final_dir))
    pattern = re.compile(r"^\.{}\.[a-z0-9_]{{8}}\.(staging|old)$".format(re.escape(name)))
    try:
        found = sorted((os.path.getmtime(os.path.join(parent, n)), n) for n in os.listdir(parent) if pattern.match(n))
    except OSError:
        return
    olds = [n for _, n in found if n.endswith(".old")]
    if olds and not os.path.lexists(final_dir):
        os.replace(os.path.join(parent, olds[-1]), final_dir)
    for _, n in found:
        shutil.rmtree(os.path.join(parent, n), ignore_errors=True)


def scratch_dir(final_dir: str) -> str:
    """A new scratch folder in ``final_dir``'s own staging area (``.NAME.xxxxxxxx.staging`` beside it):
    what a writer killed outright leaves there is swept by the next holder of the output's lock, never
    left in the temp directory. The caller holds that lock and removes the folder when done."""
    real = os.path.realpath(resolve_link(final_dir))
    parent = ensure_parent_dir(real)
    try:
        return tempfile.mkdtemp(prefix="." + os.path.basename(real) + ".", suffix=".staging", dir=parent)
    except OSError as exc:
        raise _cannot_write(final_dir, exc)


@contextlib.contextmanager
def staged_directory(final_dir: str) -> Iterator[str]:
    """Build a directory under a temporary name and swap it in at the end.

    The old directory (if any) is moved aside first and deleted only after the new
    one is in place, so a crash at any point leaves either the old or the new one; on
    any exception (Ctrl-C and SIGTERM included, see cli) the staging folder is removed
    and the old directory is put back. A symlink is written through to its target.
    """
    final_dir = resolve_link(final_dir)
    parent = ensure_parent_dir(final_dir)
    name = "." + os.path.basename(final_dir) + "."
    try:
        stage = tempfile.mkdtemp(prefix=name, suffix=".staging", dir=parent)
    except OSError as exc:
        raise _cannot_write(final_dir, exc)
    old = None
    try:
        _normal_mode(stage, directory=True)
        yield stage
        if os.path.lexists(final_dir):
            old = tempfile.mkdtemp(prefix=name, suffix=".old", dir=parent)
            os.replace(final_dir, old)  # a rename may replace an empty folder
        os.replace(stage, final_dir)
    except BaseException:
        if old is not None and not os.path.lexists(final_dir):
            os.replace(old, final_dir)
            old = None
        shutil.rmtree(stage, ignore_errors=True)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


# Why a write failed, in words: the file, and "disk full" rather than errno noise. numpy reports a
# short write as ``30720 requested and 15328 written`` with no errno, and hnswlib and OpenCV do not
# report failed writes at all; the file system's free space and ``ulimit -f`` tell what happened.
_SHORT_WRITE = re.compile(r"(\d+) requested and (\d+) written")


def write_failure(path: str, exc: OSError, kept: str = "", written: Optional[str] = None) -> JistEdgeError:
    """``cannot write PATH: disk full (...)``: the file and the cause of a failed write.

    numpy reports a short write as ``30720 requested and 15328 written`` with no errno;
    the file system's free space and the file-size limit tell which it was (``written``:
    the file actually being written, e.g. in a staging folder, when not ``path``)."""
    code = exc.errno
    if code is None and _SHORT_WRITE.search(str(exc)):
        code = _short_write_cause(written or path)
    detail = exc.strerror or str(exc)
    if code in (errno.ENOSPC, errno.EDQUOT):
        reason = "disk full" if code == errno.ENOSPC else "disk quota exceeded"
        reason += " ({})".format(detail) if detail and detail != os.strerror(code) else ""
    elif code == errno.EFBIG:
        reason = "file too large for the file system or the file-size limit (ulimit -f)"
    else:
        reason = detail
    return JistEdgeError("cannot write {}: {}{}".format(path, reason, "; " + kept if kept else ""))


def _short_write_cause(path: str) -> Optional[int]:
    directory = os.path.dirname(os.path.abspath(path))
    while directory and not os.path.isdir(directory):  # the final path of a staged write may not exist yet
        directory = os.path.dirname(directory)
    try:
        if os.path.exists(path) and os.path.getsize(path) >= _size_limit():
            return errno.EFBIG
        if fs_full(directory):
            return errno.ENOSPC
    except OSError:
        pass
    return None


def _size_limit() -> float:
    """The process's file-size limit (``ulimit -f``) in bytes; infinite where there is none."""
    try:
        import resource
    except ImportError:  # not Unix
        return float("inf")
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return float("inf") if limit == resource.RLIM_INFINITY else float(limit)


def fs_full(directory: str) -> bool:
    """No block left for us on the file system of ``directory`` (root may use the reserve)."""
    if not hasattr(os, "statvfs"):  # not Unix: nothing to tell
        return False
    vfs = os.statvfs(directory)
    return (vfs.f_bfree if os.geteuid() == 0 else vfs.f_bavail) == 0


def check_complete(path: str) -> None:
    """Raise OSError when a writer that ignores errors (hnswlib, OpenCV) may have stopped short:
    the disk filled up or the file reached the file-size limit while it wrote."""
    if os.path.exists(path) and os.path.getsize(path) >= _size_limit():
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG), path)
    if fs_full(os.path.dirname(os.path.abspath(path))):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
