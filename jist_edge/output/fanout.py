"""Where each result of a run goes: JSON lines (a file or stdout), the status line, the window, the web view.

``Sinks`` is `jist-edge run`'s fan-out; a program that runs a ``Localizer`` itself can use it
the same way: ``sinks(result, image)`` per result, ``sinks.event(event)`` per outage event,
``sinks.close()`` at the end.
"""
import errno
import logging
import sys
from typing import Any, Optional

from jist_edge.claims import check_writable
from jist_edge.errors import JistEdgeError
from jist_edge.output.sinks import Display, JsonlSink, StatusLine, StatusLogHandler, display_problem
from jist_edge.fileio import write_failure


class OutputFailed(JistEdgeError):
    """The JSON lines could not be written (disk full...): the run stops and still prints its summary."""


class Sinks(object):
    """Where each result goes in `run`: JSON lines (file or stdout), the status line, the window, the web view.

    An --output file is checked before the run but opened (and emptied) only when the first
    result exists: a run that fails before that leaves an existing file byte-identical, and
    the file is written line by line, so `tail -f` follows it live."""

    def __init__(self, output: Optional[str], json_to_stdout: bool, display: bool, quiet: bool, log,
                 web: Any = None, option: str = "--output") -> None:
        self.web = web  # the --serve live view (closed by the command)
        self.viewer = None  # type: Any
        if display:
            problem = display_problem()
            if problem:
                log("--display skipped: " + problem)
            else:
                self.viewer = Display()
        terminal = sys.stderr if json_to_stdout or sys.stdout is None else sys.stdout  # None: `run >&-`
        self.status = StatusLine(terminal) if not quiet and terminal is not None and terminal.isatty() else None
        self._log_handler = None  # type: Any
        if self.status is not None:  # warnings on their own lines, not glued onto the status line
            self._log_handler = StatusLogHandler(self.status)
            logging.getLogger("jist_edge").addHandler(self._log_handler)
        self.output = check_writable(output, option) if output is not None else None
        self._handle = None  # type: Any
        self._lock = writer_lock(self.output)  # a second `run --output` to the same file is refused
        self.jsonl = JsonlSink(sys.stdout) if json_to_stdout else None
        self._last_image = self._lost_image = None  # type: Any

    def __call__(self, result: Any, image: Any) -> bool:
        """Hand one result to every sink; False when the user closed the window."""
        self._last_image = image
        self._write_json(result)
        if self.status:
            self.status(result)
        if self.web is not None:
            self.web(result, image)
        if self.viewer is not None:
            self.viewer(result, image)
            return not self.viewer.stopped
        return True

    def event(self, event: Any) -> None:
        """A live source's outage event: a JSON line (lost/back), the status line, the views."""
        if event.recorded:
            self._write_json(event, record=True)
            if self.web is not None:
                self.web.source_event(event)
            self._lost_image = self._last_image if event.kind == "source_lost" else None
            return
        if self.status:
            self.status.lost(event.lost_s)
        if self.viewer is not None:
            self.viewer.lost(self._lost_image, event.lost_s)

    def _write_json(self, item: Any, record: bool = False) -> None:
        try:
            if self.output is not None and self._handle is None:
                self._handle = open(self.output, "w")
                self.jsonl = JsonlSink(self._handle)
            if self.jsonl:
                if record:
                    self.jsonl.event(item)
                else:
                    self.jsonl(item)
        except OSError as exc:
            raise self._failure(exc)

    def _failure(self, exc: OSError) -> Any:
        if exc.errno == errno.EPIPE:  # `run | head`: click exits quietly
            return exc
        return OutputFailed(str(write_failure(self.output or "<stdout>", exc)))

    def close(self) -> Optional[OutputFailed]:
        """Close every sink; the failure to flush the last lines (disk full), if any."""
        if self._log_handler is not None:
            logging.getLogger("jist_edge").removeHandler(self._log_handler)
            self._log_handler = None
        if self.status:
            self.status.close()
        if self.viewer is not None:
            self.viewer.close()
        try:
            if self._handle is not None:
                handle, self._handle = self._handle, None
                try:
                    handle.close()
                except OSError as exc:
                    failure = self._failure(exc)
                    if isinstance(failure, OutputFailed):
                        return failure
                    raise failure
            return None
        finally:
            lock, self._lock = self._lock, None
            if lock is not None:
                lock.__exit__(None, None, None)


def writer_lock(output: Optional[str]) -> Any:
    """The held lock on a regular --output file (jist_edge.locks), None for stdout, a FIFO or a device."""
    import os
    import stat

    from jist_edge.locks import output_lock

    if output is None:
        return None
    try:
        if not stat.S_ISREG(os.stat(output).st_mode):
            return None
    except OSError:
        pass  # not there yet: it will be a regular file
    lock = output_lock(output, "--output")
    lock.__enter__()
    return lock
