"""`jist-edge train`: JIST's joint image and sequence training on your drives (host only; torch on use)."""
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import click

from jist_edge.cli.common import FiniteFloatRange, check_route_path, echo_table, warn
from jist_edge.errors import JistEdgeError

INSTALL_HINT = "pip install torch==2.13.0 'jist-edge[export]'"


class _Bar(object):
    """A progress bar over the time budget: step, losses, ETA."""

    def __init__(self, budget_s: float, enabled: bool) -> None:
        self.enabled = enabled
        self.budget = int(budget_s) or 1
        self.done = 0
        self.text = ""
        self.bar = None  # type: Any

    def __call__(self, elapsed: float, budget: float, last: Dict[str, float]) -> None:
        if not self.enabled:
            return
        if self.bar is None:  # opened at the first step, so reading the drives does not count in its ETA
            self.bar = click.progressbar(length=self.budget, label="training", show_eta=True,
                                         file=click.get_text_stream("stderr"), item_show_func=lambda _: self.text)
            self.bar.__enter__()
        self.text = "step {}  loss {:.3f}  triplet {:.4f}  cosface {:.3f}".format(
            int(last["step"]), last["loss"], last["triplet"], last["cosface"])
        now = min(int(elapsed), self.budget)
        self.bar.update(max(0, now - self.done), self.text)
        self.done = max(self.done, now)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _val_pairs(val_routes: Sequence[str], val_databases: Sequence[str]) -> List[Any]:
    """Held-out (database, queries) pairs: --val-route QUERIES with --val-database DB, or a synth folder alone."""
    from jist_edge.training.data import DriveSpec, synthetic_pair

    if val_databases and len(val_databases) != len(val_routes):
        raise click.UsageError("{} --val-route but {} --val-database: give one database per held-out route, or "
                               "synthetic route folders alone".format(len(val_routes), len(val_databases)))
    pairs = []
    for n, route in enumerate(val_routes):
        check_route_path("--val-route", route)
        if val_databases:
            check_route_path("--val-database", val_databases[n])
            pairs.append([DriveSpec(val_databases[n]), DriveSpec(route)])
            continue
        found = synthetic_pair(route)
        if found is None:
            raise click.UsageError("--val-route {} is not a synthetic route folder (route.json): give its "
                                   "database drive with --val-database".format(route))
        pairs.append([DriveSpec(src, pos) for src, pos in found])
    return pairs


@click.command("train")
@click.option("--route", "routes", type=click.Path(), multiple=True, required=True,
              help="A training drive: video file or image folder (VPR names), or a `jist-edge synth` folder (its "
                   "two passes). Repeat; drives of the same streets pair up for the sequence branch.")
@click.option("--positions", type=click.Path(dir_okay=False), multiple=True,
              help="CSV frame,easting,northing (or lat,lon) per --route in the same order, '-' for file names.")
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
              help="Start from these weights (e.g. JIST_r18_512_seqgem.pth, official layout).")
@click.option("--random-init", is_flag=True, help="Start from random weights (tests, synthetic demos).")
@click.option("--img-size", type=(int, int), default=(480, 640), show_default=True, metavar="H W",
              help="Training input height and width (export the result at the same size).")
@click.option("--minutes", type=FiniteFloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="Training time budget (drive reading and held-out scoring not counted).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True,
              help="Checkpoint to write (official layout; `jist-edge export --checkpoint` takes it).")
@click.option("--resume", is_flag=True, help="Continue the training saved in --output (and --output.state).")
@click.option("--force", is_flag=True, help="Replace an existing --output.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of sampling (and of --random-init).")
@click.option("--trainable", "kind", type=click.Choice(["layer4", "head"]), default="layer4", show_default=True,
              help="layer4: JIST's set (layer4, GeM p, FC, SeqGeM p) on cached layer3 output; head: GeM p, FC, "
                   "SeqGeM p on cached layer4 output (tiny CPU budgets).")
@click.option("--lr", type=FiniteFloatRange(min=0, min_open=True), default=None,
              help="Adam learning rate of the weights [default: 1e-4 layer4, 1e-3 head; JIST uses 1e-5 on a GPU].")
@click.option("--lr-p", type=FiniteFloatRange(min=0, min_open=True), default=None,
              help="Learning rate of GeM p and SeqGeM p [default: --lr / 10]; p is clamped to [1, 8].")
@click.option("--triplets", type=click.IntRange(1), default=4, show_default=True, help="Triplets per step.")
@click.option("--images", type=click.IntRange(2), default=32, show_default=True,
              help="Images per step for the CosFace branch (JIST: 64).")
@click.option("--triplet-weight", type=FiniteFloatRange(min=0), default=100.0, show_default=True,
              help="Weight of the triplet loss (JIST: 100).")
@click.option("--cosface-weight", type=FiniteFloatRange(min=0), default=1.0, show_default=True,
              help="Weight of the CosFace loss (JIST: 1).")
@click.option("--seq-len", type=click.IntRange(1), default=5, show_default=True, help="Frames per sequence L.")
@click.option("--val-route", "val_routes", type=click.Path(), multiple=True,
              help="Held-out query drive scored before and after (R@1 raw and filtered); a synth folder alone "
                   "is its own database and queries. Repeat: judge on several.")
@click.option("--val-database", "val_databases", type=click.Path(), multiple=True,
              help="The database drive of each --val-route (image folders with VPR names, in order).")
@click.option("--checkpoint-every", type=FiniteFloatRange(min=0, min_open=True), default=2.0, show_default=True,
              help="Minutes between checkpoints.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Summary JSON [default: OUTPUT without .pth + .train.json].")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Loss and held-out recall PNG [default: OUTPUT without .pth + .train.png].")
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True,
              help="CPU threads for torch: on a shared 2-core machine one thread ran 4-8x faster than two.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def command(routes, positions, checkpoint, random_init, img_size, minutes, output, resume, force, seed, kind, lr, lr_p,
            triplets, images, triplet_weight, cosface_weight, seq_len, val_routes, val_databases, checkpoint_every,
            json_path, plot_path, threads, quiet):
    """Fine-tune JIST (triplets of SeqGeM sequences + CosFace on frames) on drives with positions.

    \b
    Examples:
      jist-edge train --route day.avi --positions day.csv --route night.avi --positions night.csv \\
          --checkpoint JIST_r18_512_seqgem.pth --minutes 60 --output mine.pth
      jist-edge synth --seed 1 -o s1; jist-edge synth --seed 2 -o s2; jist-edge synth --seed 3 -o s3
      jist-edge train --route s1 --route s2 --val-route s3 --random-init --img-size 120 160 \\
          --trainable head --minutes 5 --output synth.pth
      jist-edge export --checkpoint synth.pth --img-size 120 160
    """
    try:
        from jist_edge.training.threads import set_torch_threads  # optional: torch, host side
    except ImportError:
        raise JistEdgeError("jist-edge train needs torch (host only): {}".format(INSTALL_HINT))
    from jist_edge.training.data import expand_routes
    from jist_edge.training.loop import Config
    from jist_edge.training.run import train

    set_torch_threads(threads)
    if checkpoint is not None and random_init:
        raise click.UsageError("give --checkpoint or --random-init, not both")
    if checkpoint is None and not random_init and not resume:
        raise click.UsageError("give --checkpoint START.pth (e.g. the official JIST_r18_512_seqgem.pth) or "
                               "--random-init")
    for route in routes:
        check_route_path("--route", route)
    if min(img_size) < 32:
        raise click.BadParameter("must be at least 32 x 32, got {} x {}".format(*img_size), param_hint="--img-size")
    lr = lr or (1e-4 if kind == "layer4" else 1e-3)
    config = Config(kind, lr, lr_p or lr / 10.0, 1e-2, triplets, images, triplet_weight, cosface_weight, seq_len)
    stem = os.path.splitext(output)[0]
    bar = _Bar(minutes * 60.0, not quiet)
    try:
        summary = train(expand_routes(routes, positions), output, img_size, minutes, checkpoint, random_init, seed,
                        config, _val_pairs(val_routes, val_databases), resume, force, checkpoint_every,
                        json_path or stem + ".train.json", plot_path or stem + ".train.png",
                        say=_say(bar), progress=bar)
    finally:
        bar.close()
    _report(summary, json_path or stem + ".train.json")


def _say(bar: _Bar):
    def say(text: str) -> None:
        if text.startswith("matplotlib"):
            warn(text)
        else:
            click.echo(text, err=True)
    return say


def _report(summary: Dict[str, Any], json_path: str) -> None:
    click.echo("trained {} steps in {:.1f} min ({}, {} frames per step); GeM p {:.3f}, SeqGeM p {:.3f}".format(
        summary["steps"], summary["trained_s"] / 60.0, summary["device"], summary["frames_per_step"],
        summary["gem_p"], summary["seqgem_p"]))
    before, after = summary["held_out"]["before"], summary["held_out"]["after"]
    if before and after:
        rows = [[os.path.basename(os.path.dirname(b["queries"])) or b["queries"], b["recall"]["1"], a["recall"]["1"],
                 b["filtered_r1"], a["filtered_r1"]] for b, a in zip(before["routes"], after["routes"])]
        rows.append(["mean", before["mean_r1"], after["mean_r1"], before["mean_filtered_r1"],
                     after["mean_filtered_r1"]])
        echo_table(["held-out", "R@1 before", "R@1 after", "filtered before", "filtered after"], rows)
    click.echo("checkpoint: {}  summary: {}{}".format(summary["checkpoint"], json_path,
                                                     "  plot: " + summary["plot"] if summary.get("plot") else ""))
    click.echo("next: jist-edge export --checkpoint {} --img-size {} {}".format(summary["checkpoint"],
                                                                              *summary["img_size"]))
