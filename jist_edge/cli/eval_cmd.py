"""`jist-edge eval`: recall@N on a database/query pair, as in the paper."""
import os

import click

from jist_edge.cli.common import FiniteFloatRange, FrameProgress, echo_table, model_path, warn, workspace_option
from jist_edge.errors import JistEdgeError
from jist_edge.positions import POSITIVE_RADIUS_M


def parse_recalls(values, extra) -> list:
    """--recall 1 5 10, --recall 1,5,10 or --recall 1 --recall 5: all mean N in (1, 5, 10)."""
    out = []
    for text in list(values) + list(extra):
        for part in str(text).replace(",", " ").split():
            try:
                n = int(part)
            except ValueError:
                raise click.UsageError("unexpected argument {!r} (--recall takes positive integers)".format(part))
            if n < 1:
                raise click.UsageError("--recall values must be positive, got {}".format(n))
            out.append(n)
    return sorted(set(out)) or [1, 5, 10]


@click.command("eval", context_settings={"allow_extra_args": True})
@click.option("--model", type=click.Path(), default=None, help="Model bundle [default: <workspace>/model].")
@click.option("--database", required=True, type=click.Path(),
              help="Database pass: image folder, video file, ROS bag, or a map folder built with this model.")
@click.option("--queries", required=True, type=click.Path(), help="Query pass: image folder, video file or ROS bag.")
@click.option("--image-topic", default=None, help="ROS bags: the image topic [default: the bag's only one].")
@click.option("--position-topic", default=None, help="ROS bags: the position topic [default: the bag's only one].")
@click.option("--database-positions", type=click.Path(dir_okay=False), default=None,
              help="CSV of database positions [default: from file names].")
@click.option("--query-positions", type=click.Path(dir_okay=False), default=None,
              help="CSV of query positions [default: from file names].")
@click.option("--seq-len", type=click.IntRange(1), default=None, help="Frames per sequence L [default: the bundle's].")
@click.option("--threshold", default=POSITIVE_RADIUS_M, show_default=True, type=FiniteFloatRange(min=0, min_open=True),
              help="Positive radius in metres.")
@click.option("--recall", "recall", multiple=True,
              help="N of recall@N: --recall 1 5 10 or --recall 1,5,10 [default: 1 5 10].")
@click.option("--exact", is_flag=True, help="Exact search only (default: hnswlib and exact side by side).")
@click.option("--ef", type=click.IntRange(1), default=None, help="hnswlib search ef [default: the matcher's].")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(1), help="Frames per encoder call.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write the report here (with one row per query when the route filter runs).")
@click.option("--no-filter", "no_filter", is_flag=True, help="Raw recall only, without the route filter.")
@click.option("--plot", "plot_dir", type=click.Path(file_okay=False), default=None,
              help="Write PNGs here: precision-recall curves and the route (needs matplotlib).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@workspace_option
@click.pass_context
def command(ctx, model, database, queries, image_topic, position_topic, database_positions, query_positions, seq_len, threshold, recall, exact, ef,
            batch_size, json_path, no_filter, plot_dir, quiet, workspace_path):
    """Recall@N of a query pass against a database pass (the JIST paper's protocol).

    Both passes become sliding windows of L frames. A database sequence is a positive
    for a query sequence when any of its frames lies within --threshold metres of any
    query frame; queries with no positive are reported and left out.

    \b
    Example:
      jist-edge eval --database route/db --queries route/query --recall 1 5 10 --json eval.json
    """
    from jist_edge.bundle import load_bundle
    from jist_edge.evaluation.recall import evaluate, recall_rows
    from jist_edge.fileio import write_json_atomic
    from jist_edge.claims import check_writable

    recalls = parse_recalls(recall, ctx.args)
    for option, path in (("--database", database), ("--queries", queries)):
        if not os.path.exists(path):
            raise JistEdgeError("{} not found: {}".format(option, path))
    database, database_positions, queries, query_positions = _bag_passes(
        database, database_positions, queries, query_positions, image_topic, position_topic)
    if json_path:
        json_path = check_writable(json_path, "--json")  # refused now, not after the evaluation
    if plot_dir and no_filter:
        raise click.UsageError("--plot draws the route filter's results: drop --no-filter")
    if plot_dir and os.path.exists(plot_dir) and not os.path.isdir(plot_dir):
        raise JistEdgeError("--plot {} exists and is not a folder".format(plot_dir))
    bundle = load_bundle(model_path(model, workspace_path))
    progress = FrameProgress("encoding", enabled=not quiet)
    try:
        report = evaluate(bundle, database, queries, seq_len=seq_len, threshold=threshold, recalls=recalls,
                          methods=("exact",) if exact else ("hnsw", "exact"), ef=ef, batch_size=batch_size,
                          database_positions=database_positions, query_positions=query_positions,
                          progress=progress, route_filter=not no_filter)
    finally:
        progress.close()
    q = report["queries"]
    if q["without_positive"]:
        warn("{} of {} query sequences have no database sequence within {:g} m and are left out (e.g. {})".format(
            q["without_positive"], q["sequences"], report["threshold_m"], ", ".join(q["without_positive_first"][:3])))
    if report["random_init"]:
        warn("the model bundle has random weights: recalls say nothing about JIST's accuracy")
    db = report["database"]
    click.echo("database {} sequences ({} frames), queries {} evaluated of {}, L={}, threshold {:g} m".format(
        db["sequences"], db["frames"], q["evaluated"], q["sequences"], report["seq_len"], report["threshold_m"]))
    echo_table(["search"] + ["R@{}".format(n) for n in report["recall_at"]] + ["ms/query"],
               [row + [report["timing"][m]["query_ms_mean"]] for row, m in zip(recall_rows(report), report["results"])])
    if "top1_agreement_hnsw_exact" in report:
        click.echo("hnswlib top-1 agrees with exact search on {:.2f}% of queries".format(
            100.0 * report["top1_agreement_hnsw_exact"]))
    if "filter" in report:
        from jist_edge.cli.filter_report import print_comparison

        print_comparison(report["filter"], click.echo)
    if json_path:
        write_json_atomic(json_path, report)
        click.echo("report written: {}".format(json_path))
    if plot_dir:
        from jist_edge.evaluation.plots import write_plots

        for path in write_plots(report, plot_dir):
            click.echo("plot written: {}".format(path))


def _bag_passes(database, database_positions, queries, query_positions, image_topic, position_topic):
    """ROS bags given as --database or --queries become (frame source, positions) pairs (cli.bag_cmd)."""
    from jist_edge.cli.bag_cmd import bag_route, is_bag

    passes = []
    for option, path, positions, csv_option in (("--database", database, database_positions, "--database-positions"),
                                                ("--queries", queries, query_positions, "--query-positions")):
        if is_bag(path):
            if positions is not None:
                raise click.UsageError("{} {} is a bag: its positions come from its position topic; drop {}".format(
                    option, path, csv_option))
            passes.extend(bag_route(path, image_topic, position_topic))
        else:
            passes.extend((path, positions))
    if (image_topic or position_topic) and not (is_bag(database) or is_bag(queries)):
        raise click.UsageError("--image-topic and --position-topic apply to ROS bags only")
    return passes[0], passes[1], passes[2], passes[3]
