"""One writer per output: a second `map build` (export, engine build...) into the same place is refused.

The lock is an advisory ``flock`` on a small file beside the output (``.NAME.lock``,
never inside it, so the folder swap does not touch it) holding the writer's pid and
command. The kernel drops a flock when its process dies, however it dies, so a lock
whose holder is gone never blocks: the next writer takes the leftover file over. The
holder removes the file when it is done; a writer that opened the file just before
that checks, once it holds the lock, that the file is still the one at the path.
Holding the lock, a writer also sweeps the staging folders a writer killed outright
(SIGKILL, power loss) left beside the output: no one else can be writing them.

Where ``fcntl`` is missing (Windows) there is no locking: the atomic swap still keeps
every output whole, but two writers may both finish and the last one wins.
"""
import contextlib
import errno
import json
import os
import stat
import sys
import time
from typing import Any, Dict, Iterator, List, Optional

from jist_edge.errors import JistEdgeError
from jist_edge.fileio import ensure_parent_dir, resolve_link, sweep_leftovers

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux/macOS
    fcntl = None  # type: ignore

# real output path -> [lock fd, depth]: a process may nest locks on one output (the CLI
# holds it for the whole command, the library functions take it again around the write)
_HELD = {}  # type: Dict[str, List[int]]


class LockedError(JistEdgeError):
    """Another live process is writing the same output."""


def lock_path(target: str) -> str:
    """``/x/.map.lock`` for ``/x/map``: beside the output, on the same file system."""
    real = os.path.realpath(os.path.abspath(target))
    return os.path.join(os.path.dirname(real), "." + os.path.basename(real) + ".lock")


@contextlib.contextmanager
def output_lock(target: str, what: str = "output") -> Iterator[None]:
    """Hold the lock on ``target`` (a folder or file about to be written) for the block.

    Refuses at once, naming the holder's pid and command, when another process holds
    it; ``what`` names the output in that message (``map output``, ``engine cache``)."""
    real = os.path.realpath(resolve_link(target, what))  # a link to nothing is refused, nothing created
    held = _HELD.get(real)
    if held is not None or fcntl is None:
        if held is not None:
            held[1] += 1
        try:
            yield
        finally:
            if held is not None:
                held[1] -= 1
        return
    path = lock_path(real)
    fd = _acquire(path, real, what)
    try:  # from here on, Ctrl-C or SIGTERM at any point still removes the lock file
        _HELD[real] = [fd, 1]
        sweep_leftovers(real)  # what writers killed outright left: no one else can be writing it now
        try:
            yield
        except BaseException:  # a signal inside mkdtemp leaves a folder no one has a name for: swept here
            sweep_leftovers(real)
            raise
    finally:
        _HELD.pop(real, None)
        _release(path, fd)


def _acquire(path: str, target: str, what: str) -> int:
    ensure_parent_dir(target)  # the lock's folder too; an error names the output, not the lock
    while True:
        fd = _open_lock_file(path, target, what)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_holder(fd)
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise JistEdgeError("cannot lock {} {}: {}".format(what, target, exc.strerror))
            raise LockedError("{} {} is being written by another jist-edge process ({}); wait for it to finish "
                              "or write somewhere else (lock: {})".format(what, target, _describe(holder), path))
        if _same_file(fd, path):
            try:
                _write_holder(fd)
            except BaseException:  # an interrupt between taking the lock and handing it over
                _release(path, fd)
                raise
            return fd
        os.close(fd)  # the holder removed the file as we opened it: take the new one


# a lock file is never followed through a link (a planted ``.map.lock -> victim`` would be
# truncated and overwritten) and never leaks into a child process
_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _open_lock_file(path: str, target: str, what: str) -> int:
    """Open (or create) the lock file itself: a link, a folder or a device there is refused."""
    if os.path.islink(path):
        raise JistEdgeError("cannot lock {} {}: the lock file {} is a symlink (planted or left by mistake); "
                            "remove it".format(what, target, path))
    try:
        fd = os.open(path, _OPEN_FLAGS | getattr(os, "O_NONBLOCK", 0), 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise JistEdgeError("cannot lock {} {}: the lock file {} is a symlink; remove it".format(
                what, target, path))
        raise JistEdgeError("cannot lock {} {}: cannot create {}: {}".format(what, target, path, exc.strerror))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise JistEdgeError("cannot lock {} {}: the lock file {} is not a regular file; remove it".format(
            what, target, path))
    return fd


def _same_file(fd: int, path: str) -> bool:
    try:
        mine, there = os.fstat(fd), os.lstat(path)
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino)


def _write_holder(fd: int) -> None:
    record = {"pid": os.getpid(), "command": " ".join(["jist-edge"] + _command_words()),
              "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, (json.dumps(record, sort_keys=True) + "\n").encode("utf-8"))


def _command_words() -> List[str]:
    """The subcommand words of this process (``map build``), never its paths or values."""
    words = []  # type: List[str]
    for arg in sys.argv[1:3]:
        if arg.startswith("-") or os.sep in arg:
            break
        words.append(arg)
    return words


def _read_holder(fd: int) -> Optional[Dict[str, Any]]:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        record = json.loads(os.read(fd, 4096).decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) else None


def _describe(holder: Optional[Dict[str, Any]]) -> str:
    if not holder or "pid" not in holder:
        return "pid unknown, it is just starting"
    return "pid {}, `{}`, since {}".format(holder.get("pid"), holder.get("command", "jist-edge"),
                                          holder.get("since", "?"))


def _release(path: str, fd: int) -> None:
    try:
        os.unlink(path)  # while still holding it: a waiter that opened it sees it was replaced
    except OSError:
        pass
    os.close(fd)
