"""The ``jist-edge`` command line: a thin shell over the Python API.

Subcommands live in one module each (``<name>_cmd.py``, exposing ``command``) and are
imported only when used, so ``jist-edge run`` on a Jetson never imports the export
code (and torch) that ``jist-edge export`` needs.
"""
import errno
import importlib
import signal
from typing import Any, List, Optional

import click

from jist_edge import __version__
from jist_edge.errors import Interrupted, JistEdgeError, Terminated

# name -> (module, one-line help shown in `jist-edge --help`)
COMMANDS = {
    "demo": ("demo_cmd", "Synthetic route end to end: export, map, live run, recall and speed."),
    "export": ("export_cmd", "Export a JIST checkpoint to ONNX files plus a manifest."),
    "map": ("map_cmd", "Build and inspect maps (place databases) from a route."),
    "eval": ("eval_cmd", "Recall@N on a database/query pair, as in the paper."),
    "run": ("run_cmd", "Localize live from a camera, stream, video or image folder."),
    "synth": ("synth_cmd", "Render a synthetic street route (database and query passes)."),
    "bench": ("bench_cmd", "Latency, FPS and memory per stage, beside the paper's claims."),
    "engine": ("engine_cmd", "Build TensorRT engines from a bundle (on the target device)."),
    "calibrate": ("calibrate_cmd", "INT8 calibration set, cache, Q/DQ encoder and fidelity report."),
    "train": ("train_cmd", "Fine-tune JIST on your drives (joint image + sequence training; torch)."),
    "bag": ("bag_cmd", "ROS bags: list topics, export a drive as files the Nano reads."),
    "dataset": ("dataset_cmd", "Import MSLS, Nordland or Oxford RobotCar into the VPR folder convention."),
    "doctor": ("doctor_cmd", "Print the environment that decides backends and speed."),
}


class LazyGroup(click.Group):
    """Loads subcommand modules on demand and turns JistEdgeError into one line."""

    def list_commands(self, ctx: click.Context) -> List[str]:
        return sorted(name for name, (module, _) in COMMANDS.items() if _module_exists(module))

    def get_command(self, ctx: click.Context, cmd_name: str) -> Optional[click.Command]:
        if cmd_name not in COMMANDS or not _module_exists(COMMANDS[cmd_name][0]):
            return None
        from jist_edge.cli.repeats import guard

        module = importlib.import_module("jist_edge.cli." + COMMANDS[cmd_name][0])
        return guard(module.command)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        previous = _raise_on_sigterm()
        try:
            return super().invoke(ctx)
        except Interrupted as exc:
            click.echo("Aborted: {}".format(exc), err=True)
            ctx.exit(exc.exit_code)
        except Terminated:
            click.echo("Aborted (SIGTERM).", err=True)
            ctx.exit(143)
        except JistEdgeError as exc:
            raise click.ClickException(str(exc))
        except OSError as exc:
            # A path the user gave cannot be read or written (permissions, a file where a
            # folder is needed, disk full): one line naming it. A closed stdout pipe
            # (`... | head`) is left to click, which exits quietly.
            if exc.errno == errno.EPIPE:
                raise
            raise click.ClickException(os_error_line(exc))
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


def _raise_on_sigterm() -> Any:
    """SIGTERM (systemd, docker stop, kill) raises Terminated, so finally-blocks remove staging
    folders and locks as for Ctrl-C; a second SIGTERM kills at once. Returns the old handler
    (None where handlers cannot be set: not the main thread)."""

    def handler(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise Terminated()

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:
        return None


def os_error_line(exc: OSError) -> str:
    """``cannot use PATH: reason`` for an OSError, without its errno noise."""
    reason = exc.strerror or str(exc)
    if exc.filename is None:
        return reason
    return "cannot use {}: {}".format(exc.filename, reason)


def _module_exists(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec("jist_edge.cli." + module) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="jist-edge")
def main() -> None:
    """jist-edge: JIST sequential visual place recognition on the edge.

    \b
    Typical use:
      jist-edge demo                                  # everything on a synthetic route
      jist-edge export --checkpoint JIST_r18_512_seqgem.pth
      jist-edge map build --video route.mp4 --positions route.csv
      jist-edge run --camera 0
    """
