"""Options and output helpers shared by the subcommands."""
import contextlib
import json
import math
import os
import time
from typing import Any, Callable, Iterator, Optional, Sequence

import click

from jist_edge import workspace
from jist_edge.errors import Interrupted, JistEdgeError, Terminated
from jist_edge.output.tables import print_table

workspace_option = click.option(
    "--workspace",
    "workspace_path",
    type=click.Path(file_okay=False),
    default=None,
    envvar=workspace.ENV_VAR,
    show_envvar=True,
    help="Workspace shared by export, map build and run [default: ~/.jist-edge].",
)


class FiniteFloatRange(click.FloatRange):
    """A FloatRange that also refuses nan and inf: nan passes every bound check."""

    name = "float"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail("{!r} is not a finite number".format(value), param, ctx)
        return number


def check_route_path(option: str, path: str) -> None:
    """A route given as --images must be a folder and as --video a file, and must exist."""
    if not os.path.exists(path):
        raise JistEdgeError("{} not found: {}".format(option, path))
    if option == "--images" and not os.path.isdir(path):
        raise JistEdgeError("--images must be a folder, {} is a file (use --video)".format(path))
    if option == "--video" and os.path.isdir(path):
        raise JistEdgeError("--video must be a file, {} is a folder (use --images)".format(path))


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], out: Callable[[str], None] = click.echo) -> None:
    """Print a plain aligned table (jist_edge.output.tables) through click by default."""
    print_table(headers, rows, out)


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True))


def warn(message: str) -> None:
    click.echo("warning: " + message, err=True)


def model_path(model: Optional[str], workspace_path: Optional[str]) -> str:
    """--model, else the workspace's bundle, which must exist; the error says which command makes it."""
    path = model or workspace.model_dir(workspace_path)
    if not os.path.isdir(path):
        raise JistEdgeError("no model bundle at {}: run `jist-edge export --checkpoint JIST_r18_512_seqgem.pth` "
                            "(or pass --model)".format(path))
    return path


class FrameProgress(object):
    """A progress bar with frames/s when the frame count is known, a counter line otherwise."""

    def __init__(self, label: str, enabled: bool = True) -> None:
        self.label = label
        self.done = 0
        self.start = time.time()
        self.enabled = enabled
        self._bar = None  # type: Any

    def set_total(self, total: Optional[int]) -> None:
        """Called as a route starts; each route restarts the count and the clock."""
        self.close()
        self.done = 0
        self.start = time.time()
        if self.enabled and total:
            self._bar = click.progressbar(length=total, label=self.label, file=click.get_text_stream("stderr"),
                                          item_show_func=self._rate)
            self._bar.__enter__()

    def _rate(self, _: Any) -> str:
        return "{:.1f} frames/s".format(self.rate())

    def rate(self) -> float:
        return self.done / max(time.time() - self.start, 1e-9)

    def __call__(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(n, self.done)
        else:
            click.echo("\r{} {} frames  {:.1f} frames/s".format(self.label, self.done, self.rate()), nl=False,
                       err=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None
        elif self.enabled and self.done:
            click.echo("", err=True)


def _folder_state(path: str) -> Any:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


@contextlib.contextmanager
def keeps_previous(command: str, path: str, noun: str) -> Iterator[None]:
    """Ctrl-C or SIGTERM while ``command`` writes ``path``: one line saying what is there now.

    Outputs are swapped in whole (jist_edge.fileio.staged_directory), so it is the previous
    one, unless the interrupt came after the new one was in place."""
    before = _folder_state(path)
    try:
        yield
    except KeyboardInterrupt as exc:
        now = _folder_state(path)
        how = "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C"
        if now is not None and now != before:
            state = "the new {} was already in place in {}".format(noun, path)
        elif before is None:
            state = "no {} was written to {}".format(noun, path)
        else:
            state = "the previous {} in {} was kept".format(noun, path)
        raise Interrupted("{} interrupted ({}); {}".format(command, how, state),
                          143 if isinstance(exc, Terminated) else 130)
