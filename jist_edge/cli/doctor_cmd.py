"""jist-edge doctor [--json]"""
import click

from jist_edge.cli.common import echo_json, echo_table


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def command(as_json: bool) -> None:
    """Print the environment that decides backends and speed.

    Python, numpy, OpenCV (and whether it has GStreamer), ONNX Runtime and its
    providers, TensorRT and CUDA, the GPU and whether it has fast FP16/INT8, the
    Jetson model, and which backend `--backend auto` picks.
    """
    from jist_edge.cli import doctor

    report = doctor.collect()
    if as_json:
        echo_json(report)
        return
    echo_table(["item", "value"], doctor.rows(report))
    for tip in report["advice"]:
        click.echo("note: " + tip)
