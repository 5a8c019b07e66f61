"""Why a write failed, in words: the file, and "disk full" rather than errno noise.

numpy reports a short write as ``30720 requested and 15328 written`` with no errno, and
hnswlib and OpenCV do not report failed writes at all; the file system's free space and
the process's file-size limit (``ulimit -f``) tell what happened.
"""
import errno
import os
import re
from typing import Optional

from jist_edge.errors import JistEdgeError


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
