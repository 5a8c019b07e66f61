"""`jist-edge dataset import msls|nordland|robotcar SRC --output DIR`: the paper's datasets as VPR image folders."""
import click

from jist_edge.cli.common import echo_json


@click.group("dataset")
def command() -> None:
    """The JIST paper's datasets (downloaded by you) rewritten as image folders that map build and eval read."""


@command.command("import")
@click.argument("kind", type=click.Choice(["msls", "nordland", "robotcar"]))
@click.argument("src", type=click.Path())
@click.option("--output", required=True, type=click.Path(file_okay=False), help="A new or empty folder.")
@click.option("--city", "cities", multiple=True, help="msls: import only this city (repeatable) [default: all].")
@click.option("--database-season", default="summer", show_default=True, help="nordland: the database pass.")
@click.option("--query-season", default="winter", show_default=True, help="nordland: the query pass.")
@click.option("--camera", default="stereo/centre", show_default=True, help="robotcar: the camera folder of the run.")
@click.option("--bayer", default=None, type=click.Choice(["rggb", "bggr", "gbrg", "grbg"]),
              help="robotcar: the Bayer pattern [default: gbrg for stereo, rggb for mono cameras].")
@click.option("--every", default=1, show_default=True, type=click.IntRange(1), help="robotcar: keep every N-th image.")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
def import_(kind, src, output, cities, database_season, query_season, camera, bayer, every, as_json):
    """Import a dataset from SRC (its documented layout) into --output.

    \b
      jist-edge dataset import msls ~/msls --output data/msls --city cph
      jist-edge eval --database data/msls/cph/database --queries data/msls/cph/queries
      jist-edge dataset import nordland ~/nordland --output data/nordland
      jist-edge dataset import robotcar ~/robotcar/2014-12-09-13-21-02 --output data/robotcar/db
    """
    if kind == "msls":
        from jist_edge.datasets.msls import import_msls

        report = import_msls(src, output, list(cities) or None)
    elif kind == "nordland":
        from jist_edge.datasets.nordland import import_nordland

        report = import_nordland(src, output, database_season, query_season)
    else:
        from jist_edge.datasets.robotcar import import_robotcar

        report = import_robotcar(src, output, camera, bayer, every)
    if as_json:
        echo_json(report)
    else:
        click.echo("{} imported to {}".format(kind, report["output"]))
