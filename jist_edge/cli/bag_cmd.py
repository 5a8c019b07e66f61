"""`jist-edge bag info|export`, and the --bag options of map build, run and eval.

Host side: reading bags needs rosbags (pip install 'jist-edge[bags]', Python >= 3.10); it is
imported only when a bag is read, so these commands cost nothing on the Nano until used.
"""
import os
from typing import Any, List, Optional, Tuple

import click

from jist_edge.cli.common import echo_json, echo_table
from jist_edge.errors import JistEdgeError


def bag_drives(paths: List[str], image_topic: Optional[str], position_topic: Optional[str]) -> List[Any]:
    """One maps.drives.Drive per bag, every bag opened and its topics picked before any encoding."""
    from jist_edge.maps.drives import Drive
    from jist_edge.stream.sources.bag import bag_drive

    drives = []
    for path in paths:
        source, positions = bag_drive(path, image_topic, position_topic)
        drives.append(Drive(source, positions))
    return drives


def bag_route(path: str, image_topic: Optional[str], position_topic: Optional[str]) -> Tuple[Any, Any]:
    """(source, positions) of a bag for eval's --database/--queries."""
    from jist_edge.stream.sources.bag import bag_drive

    return bag_drive(path, image_topic, position_topic)


def is_bag(path: str) -> bool:
    from jist_edge.stream.sources.bag import is_bag_path

    return is_bag_path(path)


def check_bag_options(bag: Optional[str], image_topic: Optional[str], output_bag: Optional[str], no_filter: bool,
                      camera: Any, video: Any, images: Any) -> Tuple[Any, Optional[str]]:
    """run's --bag as (frame source, its name), or (None, None) without --bag; --output-bag checked before work."""
    if output_bag is not None:
        from jist_edge.claims import check_writable

        if no_filter:
            raise click.UsageError("--output-bag writes the route filter's poses: drop --no-filter")
        check_writable(output_bag, "--output-bag")
    if bag is None:
        if image_topic is not None:
            raise click.UsageError("--image-topic applies to --bag only")
        return None, None
    if camera is not None or video is not None or images is not None:
        raise click.UsageError("give exactly one of --camera, --video, --images, --bag")
    from jist_edge.stream.sources.bag import BagSource

    return BagSource(bag, image_topic, use_positions=False), bag


def open_output_bag(path: str, loc: Any) -> Any:
    """A PoseBagWriter for the Localizer's map: lat/lon maps also get NavSatFix messages."""
    from jist_edge.output.bag_writer import PoseBagWriter

    filt = loc.tracker.filter if loc.tracker is not None else None
    fallback = filt.moments.spread() if filt is not None and filt.moments is not None else None
    origin = None
    for drive in loc.place_map.drives:
        frame = drive.get("positions") or {}
        if frame.get("frame") == "latlon":
            origin = frame["origin"]
            break
    return PoseBagWriter(path, fallback, origin)


@click.group("bag")
def command() -> None:
    """ROS bags (ROS 1 .bag, ROS 2 bag folders, .mcap): what they hold, and a drive as files for the Nano."""


@command.command("info")
@click.argument("path", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def info(path, as_json):
    """Topics of a bag: message type, count, span and rate; which are images and positions."""
    from jist_edge.stream.sources.bag import bag_summary
    from jist_edge.stream.sources.bag_messages import short_type

    summary = bag_summary(path)
    if as_json:
        echo_json(summary)
        return
    click.echo("bag {} ({:.1f} s, {} messages)".format(summary["path"], summary["duration_s"], summary["messages"]))
    echo_table(["topic", "type", "messages", "rate Hz", "use"], [
        [t["topic"], short_type(t["type"]), t["messages"], "-" if t["rate_hz"] is None else t["rate_hz"],
         t["kind"] or "-"] for t in summary["topics"]])


@command.command("export")
@click.argument("path", type=click.Path())
@click.option("--output", required=True, type=click.Path(file_okay=False), help="A new or empty folder.")
@click.option("--format", "fmt", default="images", show_default=True, type=click.Choice(["images", "video"]),
              help="images: one PNG per frame; video: route.avi (MJPG).")
@click.option("--image-topic", default=None, help="The image topic [default: the bag's only one].")
@click.option("--position-topic", default=None, help="The position topic [default: the bag's only one].")
def export(path, output, fmt, image_topic, position_topic):
    """Write a bag's drive as an image folder or MJPG video plus positions.csv, which `map build` reads on a
    JetPack 4 Nano (Python 3.6, no rosbags).

    \b
      jist-edge bag export drive.bag --output drive/
      jist-edge map build --images drive/ --positions drive/positions.csv     # on the Nano
    """
    from jist_edge.output.bag_export import export_bag

    if not os.path.exists(path):
        raise JistEdgeError("bag {} not found".format(path))
    done = export_bag(path, output, fmt, image_topic, position_topic)
    click.echo("exported {} frames of {} to {}{}".format(
        done["frames"], done["image_topic"], done["output"],
        "" if done["positions"] is None else " (positions: {})".format(done["positions"])))
    skipped = done["skipped"]
    if skipped:
        click.echo("skipped {} frames ({} outside the span of the positions)".format(skipped, done["outside_positions"]),
                   err=True)
