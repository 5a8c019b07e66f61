"""The bench: statistics and interleaving helpers, then one tiny real run whose JSON and report are checked.

No timed assertions: the bench's figures are checked for presence, type, finiteness
and internal consistency (claims read the measured keys), never for speed.
"""
import json
import math
import os

import numpy as np
import pytest
from click.testing import CliRunner

from jist_edge.benchmarks import claims, descriptors, memory, report, runner, timing

STATS_KEYS = {"n", "mean_ms", "min_ms", "p50_ms", "median_ms", "p95_ms", "p99_ms", "max_ms", "fps"}
RATIO_KEYS = {"n", "min", "median", "max", "mean"}
TOP_KEYS = {"schema", "created", "mode", "machine", "settings", "model", "encoders", "streaming",
            "sequence_length", "matching", "pipeline", "soak", "memory", "claims", "durations_s", "notes"}


# --- statistics and interleaving -------------------------------------------------

def test_summarize_orders_percentiles_and_matches_numpy():
    rng = np.random.default_rng(3)
    samples = list(rng.exponential(5.0, size=501) + 0.1)
    s = timing.summarize(samples)
    assert set(s) == STATS_KEYS
    assert s["n"] == len(samples)
    assert s["min_ms"] <= s["p50_ms"] <= s["p95_ms"] <= s["p99_ms"] <= s["max_ms"]
    assert s["p50_ms"] == pytest.approx(float(np.median(samples)))
    assert s["median_ms"] == s["p50_ms"]
    assert s["p95_ms"] == pytest.approx(float(np.percentile(samples, 95)))
    assert s["fps"] == pytest.approx(1000.0 / float(np.mean(samples)))


def test_summarize_refuses_empty_and_non_finite():
    with pytest.raises(ValueError):
        timing.summarize([])
    with pytest.raises(ValueError):
        timing.summarize([1.0, float("nan")])


def test_ratio_summary_and_per_round_ratios():
    a = [2.0, 6.0, 3.0]
    b = [1.0, 2.0, 3.0]
    ratios = timing.per_round_ratios(a, b)
    assert ratios == [2.0, 3.0, 1.0]
    r = timing.ratio_summary(ratios)
    assert set(r) == RATIO_KEYS
    assert (r["min"], r["median"], r["max"], r["n"]) == (1.0, 2.0, 3.0, 3)
    with pytest.raises(ValueError):
        timing.per_round_ratios([1.0], [1.0, 2.0])


def test_interleave_calls_each_way_once_per_round_and_rotates_the_first():
    calls = []
    fns = {name: (lambda name=name: calls.append(name)) for name in ("a", "b", "c")}
    samples = timing.interleave(fns, rounds=6, warmup=1)
    assert {k: len(v) for k, v in samples.items()} == {"a": 6, "b": 6, "c": 6}
    timed = calls[3:]  # after one warm-up round
    rounds = [timed[i:i + 3] for i in range(0, len(timed), 3)]
    assert all(sorted(r) == ["a", "b", "c"] for r in rounds)
    assert [r[0] for r in rounds] == ["a", "b", "c", "a", "b", "c"]


def test_compare_reports_ratio_for_every_non_baseline_way():
    fns = {"base": lambda: sum(range(10)), "other": lambda: sum(range(20))}
    out = timing.compare(fns, baseline="base", rounds=5, warmup=0)
    assert out["rounds"] == 5
    assert set(out["stats"]) == {"base", "other"}
    assert set(out["ratio_to_baseline"]) == {"other"}
    assert out["ratio_to_baseline"]["other"]["n"] == 5
    with pytest.raises(ValueError):
        timing.compare(fns, baseline="missing", rounds=1)


def test_time_runs_respects_budget_but_keeps_min_runs():
    samples = timing.time_runs(lambda: None, runs=1000, warmup=0, budget_s=0.0, min_runs=4)
    assert len(samples) == 4


def test_finite_numbers_finds_nan_and_inf_paths():
    bad = timing.finite_numbers({"a": [1.0, float("nan")], "b": {"c": float("inf"), "d": 2}})
    assert sorted(bad) == ["a[1]", "b.c"]


def test_peak_rss_section_sees_an_allocation():
    import mmap

    with memory.PeakRss() as m:
        # fresh anonymous pages: a malloc'd block may reuse pages that are already resident (a
        # library in this process may have raised glibc's mmap/trim thresholds)
        block = mmap.mmap(-1, 40 * 2 ** 20)
        view = np.frombuffer(block, dtype=np.uint8)
        view[::4096] = 1  # touch every page
        del view
        block.close()
    assert m.result["peak_rss_mb"] >= m.result["rss_before_mb"]
    if m.result["section_isolated"]:
        assert m.result["peak_growth_mb"] >= 30


def test_route_descriptors_are_route_like_and_deterministic():
    a = descriptors.RouteDescriptors(600, dim=64, seq_len=5, seed=4, drive_len=300)
    b = descriptors.RouteDescriptors(600, dim=64, seq_len=5, seed=4, drive_len=300)
    assert np.array_equal(a.database, b.database)
    assert a.database.shape == (600, 64) and (a.database >= 0).all()
    near = np.linalg.norm(a.database[1:300] - a.database[:299], axis=1).mean()
    far = np.linalg.norm(a.database[:150] - a.database[150:300], axis=1).mean()
    assert near < far
    queries, where = a.queries(20, seed=1)
    assert queries.shape == (20, 64) and where.shape == (20,)


def test_lookup_follows_dotted_paths_with_indices():
    obj = {"a": [{"b": {"c": 3.5}}]}
    assert claims.lookup(obj, "a[0].b.c") == 3.5
    with pytest.raises((KeyError, IndexError)):
        claims.lookup(obj, "a[1].b")


# --- one tiny real run --------------------------------------------------------------

TINY = {
    "encoder_rounds": 3, "encoder_budget_s": 5.0, "seq_lens": [3], "streaming_rounds": 2,
    "streaming_budget_s": 5.0, "test_seq_lens": [1, 3], "seq_map_size": 300, "seq_queries": 20, "seq_runs": 5,
    "map_sizes": [300, 600], "efs": [8, 64], "queries": 20, "dim_sizes": [300], "kinds_sizes": [300, 600],
    "pipeline_runs": 4, "pipeline_warmup": 1, "pipeline_map_frames": 12, "soak_frames": 120,
}


@pytest.fixture(scope="module")
def bench_run(tiny_bundle, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    cfg = runner.settings(quick=True, overrides=TINY)
    lines = []
    result = runner.run_bench(cfg, str(out / "cache"), model=tiny_bundle.path, backends=["onnxruntime"],
                              log=lines.append)
    json_path = str(out / "bench.json")
    report.write_json(result, json_path)
    written = report.write_report(result, str(out / "report"))
    return {"result": result, "json": json_path, "written": written, "lines": lines, "bundle": tiny_bundle}


def _walk_stats(obj, found):
    if isinstance(obj, dict):
        if "p50_ms" in obj:
            found.append(obj)
        for value in obj.values():
            _walk_stats(value, found)
    elif isinstance(obj, list):
        for value in obj:
            _walk_stats(value, found)


def test_json_has_every_section_and_only_finite_numbers(bench_run):
    with open(bench_run["json"]) as handle:
        data = json.load(handle)
    assert TOP_KEYS <= set(data)
    assert data["schema"] == runner.SCHEMA
    assert timing.finite_numbers(data) == []
    for key in ("cpu", "cores_usable", "ram_mb", "gpu", "os", "python", "libraries"):
        assert key in data["machine"]
    assert data["model"]["bundle_id"] == bench_run["bundle"].bundle_id
    stats = []
    _walk_stats(data, stats)
    assert len(stats) > 10
    for s in stats:
        assert set(s) == STATS_KEYS
        assert all(isinstance(s[k], (int, float)) and not isinstance(s[k], bool) for k in STATS_KEYS)
        assert s["min_ms"] <= s["p50_ms"] <= s["max_ms"]


def test_encoder_and_streaming_sections(bench_run):
    r = bench_run["result"]
    size = r["encoders"]["sizes"][0]
    assert (size["height"], size["width"]) == (bench_run["bundle"].height, bench_run["bundle"].width)
    assert set(size["stats"]) == {"onnxruntime"} and size["output_dim"]["onnxruntime"] == 512
    for row in r["streaming"]["rows"]:
        ratio = row["reencoding_over_streaming"]
        assert set(ratio) == RATIO_KEYS and ratio["min"] <= ratio["median"] <= ratio["max"]
        # the ring encodes one frame per emission, re-encoding L: counted by the backend
        assert row["frames_encoded_per_emission"]["measured_total"] == pytest.approx(1 + row["seq_len"])


def test_matching_section(bench_run):
    m = bench_run["result"]["matching"]
    assert [row["n"] for row in m["sizes"]] == TINY["map_sizes"]
    for row in m["sizes"]:
        assert [h["ef"] for h in row["hnsw"]] == TINY["efs"]
        assert all(0.0 <= h["top1_agreement_with_exact"] <= 1.0 for h in row["hnsw"])
        assert row["index_file_bytes"] > row["n"] * 512 * 4  # the index stores the vectors too
    dims = m["dims"][0]
    assert dims["size_ratio"] == pytest.approx(8.0)
    assert set(dims["query"]) == {"512", "4096"}
    assert m["storage"]["float32_over_float16"] == pytest.approx(2.0)


def test_index_kinds_section(bench_run, tmp_path):
    section = bench_run["result"]["matching"]["index_kinds"]
    assert [(r["n"], r["name"]) for r in section["rows"]] == [
        (n, name) for n in TINY["kinds_sizes"] for name in ("hnsw", "hnsw-pca64")]
    for row in section["rows"]:
        rt = row["runtime"]  # from a fresh process that held the index and answered every query
        assert rt["queries"] == TINY["queries"] and rt["rss_mb"] >= rt["baseline_rss_mb"] > 0
        assert 0.0 <= row["top1_agreement_with_exact"] <= 1.0 and row["build"]["build_s"] > 0
        if row["kind"] == "hnsw-pca":  # float16 descriptors on disk, never copied into memory
            assert "descriptors_in_memory_mb" not in rt
        else:
            assert rt["descriptors_in_memory_mb"] == pytest.approx(row["n"] * 512 * 4 / 2 ** 20)
    # a second run finds the built indexes in the cache
    cache = os.path.join(str(tmp_path), "kinds")
    from jist_edge.benchmarks import index_kinds

    first = index_kinds.run([300], 5, cache, lambda line: None, threads=1)
    again = index_kinds.run([300], 5, cache, lambda line: None, threads=1)
    assert [r["build"]["cached"] for r in first["rows"]] == [False, False]
    assert [r["build"]["cached"] for r in again["rows"]] == [True, True]
    assert [r["top1_agreement_with_exact"] for r in first["rows"]] == [r["top1_agreement_with_exact"] for r in again["rows"]]


def test_max_places_settings():
    cfg = runner.settings(max_places=1000000)
    assert cfg["kinds_sizes"] == [10000, 100000, 1000000] and cfg["map_sizes"] == [1000, 10000, 100000]
    assert runner.settings(large=True)["kinds_sizes"] == cfg["kinds_sizes"]
    assert runner.settings()["kinds_sizes"] == [10000, 100000]
    assert runner.settings(quick=True, max_places=3000)["kinds_sizes"] == [1000, 3000]


def test_pipeline_section_ran_the_runtime_in_a_fresh_process(bench_run):
    p = bench_run["result"]["pipeline"]
    assert p["runs"] == TINY["pipeline_runs"]
    assert set(p["stages"]) == {"decode", "preprocess", "encode", "seqgem", "match", "end_to_end"}
    assert all(s["n"] == TINY["pipeline_runs"] for s in p["stages"].values())
    assert p["partial_results_timed"] == 0  # warm-up covers the first L frames
    assert p["memory"]["torch_imported"] is False
    assert p["memory"]["peak_rss_mb"] > 0
    assert "reason" in p["memory"]["gpu"] or p["memory"]["gpu"]["available"]
    assert set(p["overhead_over_encode"]) == RATIO_KEYS


def test_serve_section_alternated_the_three_ways_with_viewers_receiving(bench_run):
    s = bench_run["result"]["serve"]
    assert s["ways"] == ["off", "serve_no_viewers", "serve_2_viewers"] and s["viewers"] == 2
    assert all(st["n"] == s["rounds"] for st in s["ms_per_frame"].values())
    for ratios in (s["ratio_to_off"], s["cpu_ratio_to_off"]):  # wall time and process CPU time
        assert set(ratios) == {"serve_no_viewers", "serve_2_viewers"}
        assert all(set(r) == RATIO_KEYS and r["n"] == s["rounds"] for r in ratios.values())
    assert s["viewer_sessions"] == 2 * s["rounds"]  # each viewer got a frame before each of its rounds
    assert set(s["view_threads_cpu_share"]) == {"serve_no_viewers", "serve_2_viewers"}
    assert all(st["n"] == s["rounds"] for st in s["view_threads_cpu_ms_per_frame"].values())
    assert s["viewer_fps_median"] >= 0
    assert "## Live web view (run --serve)" in open(bench_run["written"]["markdown"]).read()


def test_soak_section_streamed_every_frame_through_reconnects_in_a_fresh_process(bench_run):
    s = bench_run["result"]["soak"]
    assert s["frames"] == TINY["soak_frames"] and s["reconnects"] >= TINY["soak_frames"] // 40 - 1
    assert s["torch_imported"] is False and s["rss_samples_mb"][-1][0] == TINY["soak_frames"]
    assert s["rss_min_mb"] <= s["rss_after_warmup_mb"] <= s["rss_max_mb"] <= s["peak_rss_mb"]
    with open(bench_run["written"]["markdown"]) as handle:
        assert "## Soak: resident memory over a long run" in handle.read()


def test_claims_read_measured_keys(bench_run):
    r = bench_run["result"]
    ids = [c["id"] for c in r["claims"]]
    assert ids == ["descriptor_size", "faster_matching", "ann_viable", "city_scale", "faster_inference",
                   "real_time_nano", "int8_cpu_encoder", "sequence_length_robust", "route_filter_cost",
                   "live_view_overhead"]
    for c in r["claims"]:
        assert c["value"] == pytest.approx(float(claims.lookup(r, c["key"])))
        for name, key in c["related_keys"].items():
            assert c["related"][name] == pytest.approx(float(claims.lookup(r, key)))
        assert c["holds"] in (True, False, None)
        assert c["criterion"] and c["hardware"]
    nano = {c["id"]: c for c in r["claims"]}["real_time_nano"]
    assert nano["holds"] is None  # this test machine is not a Jetson Nano
    assert {c["id"]: c for c in r["claims"]}["city_scale"]["holds"] is None  # decided only at 1M places


def test_precision_and_capture_sections(bench_run):
    """FP32 vs CPU INT8 really ran both encoders (INT8 differs yet agrees), alternating; capture timed both sizes."""
    r = bench_run["result"]
    prec = r["precision"]
    row = prec["sizes"][0]
    assert (row["height"], row["width"]) == (bench_run["bundle"].height, bench_run["bundle"].width)
    assert row["stats"]["fp32"]["n"] == row["stats"]["int8"]["n"] == row["rounds"] >= 3
    assert row["speedup"]["min"] <= row["speedup"]["median"] <= row["speedup"]["max"]
    assert 0.99 <= row["fidelity"]["frame_cosine_mean"] < 1.0 and row["random_weights"]
    assert os.path.isfile(row["int8_model"]) and prec["cpu_int8"]["verdict"] in ("fast", "some", "none", "unknown")
    e2e = prec["end_to_end"]
    assert e2e["stats"]["fp32"]["n"] == e2e["stats"]["int8"]["n"] == e2e["runs"]
    assert len(prec["load_average_start"]) == 3
    cap = r["capture"]
    for path in ("720p", "model"):
        assert cap["stats"][path]["preprocess"]["n"] == cap["frames"]
    assert cap["model_wh"] == [row["width"], row["height"]] and cap["full_wh"] == [1280, 720]
    int8 = {c["id"]: c for c in r["claims"]}["int8_cpu_encoder"]
    assert int8["value"] == row["speedup"]["median"] and "random weights" in int8["criterion"]
    with open(bench_run["written"]["markdown"]) as handle:
        text = handle.read()
    assert "Encoder precision (CPU: FP32 vs INT8)" in text and "720p in vs model size in" in text


def test_markdown_report_and_plots(bench_run):
    written = bench_run["written"]
    with open(written["markdown"]) as handle:
        text = handle.read()
    assert "Paper claims vs measured here" in text
    assert bench_run["result"]["machine"]["cpu"] in text
    for c in bench_run["result"]["claims"]:
        assert c["claim"] in text
    if written["plot_note"] is None:
        assert len(written["plots"]) == len(report.PLOTS) + 1  # + the index-kinds plot
        for path in written["plots"]:
            with open(path, "rb") as handle:
                assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
            assert os.path.basename(path) in text
    lines = []
    report.terminal_summary(bench_run["result"], lines.append)
    assert any("end_to_end" in line for line in lines)
    assert any(line.startswith("descriptor_size") for line in lines)


# --- the command ----------------------------------------------------------------------

def test_cli_help_and_bad_options():
    from jist_edge.cli import main

    cli = CliRunner()
    out = cli.invoke(main, ["bench", "--help"])
    assert out.exit_code == 0 and "--quick" in out.output and "--report" in out.output
    out = cli.invoke(main, ["bench", "--map", "somewhere"])
    assert out.exit_code != 0 and "--model" in out.output
    out = cli.invoke(main, ["bench", "--img-size", "8", "8"])
    assert out.exit_code != 0 and "--img-size" in out.output


def test_cli_unknown_backend_is_one_line_error(tiny_bundle, tmp_path):
    from jist_edge.cli import main

    out = CliRunner().invoke(main, ["bench", "--model", tiny_bundle.path, "--backend", "nope",
                                    "--workspace", str(tmp_path)])
    assert out.exit_code != 0
    assert "--backend nope" in out.output and "Traceback" not in out.output


def test_cli_refuses_a_foreign_map_and_an_unwritable_output_before_any_timing(tiny_bundle, alt_bundle, tmp_path):
    """Both used to surface only at the end of the run (minutes for a full bench)."""
    from map_routes import route_frames, write_images

    from jist_edge.cli import main
    from jist_edge.maps.build import build_map

    write_images(str(tmp_path / "db"), route_frames(8))
    place_map = build_map(tiny_bundle, str(tmp_path / "db"), str(tmp_path / "map"))
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    cli = CliRunner()
    for args in (["--model", alt_bundle.path, "--map", place_map.path],
                 ["--model", tiny_bundle.path, "--map", place_map.path, "--json", str(blocker / "b.json")],
                 ["--model", tiny_bundle.path, "--report", str(blocker / "rep")]):
        out = cli.invoke(main, ["bench", "--quick", "--workspace", str(tmp_path / "ws")] + args)
        assert out.exit_code == 1 and "Traceback" not in out.output, out.output
        assert "machine:" not in out.output and not (tmp_path / "ws").exists()
    assert alt_bundle.bundle_id in cli.invoke(main, ["bench", "--model", alt_bundle.path, "--map",
                                                     place_map.path]).output


@pytest.mark.slow
def test_cli_quick_end_to_end(tmp_path):
    from jist_edge.cli import main

    out = CliRunner().invoke(main, ["bench", "--quick", "--workspace", str(tmp_path / "ws"), "--json",
                                    str(tmp_path / "q.json"), "--report", str(tmp_path / "rep")])
    assert out.exit_code == 0, out.output
    with open(str(tmp_path / "q.json")) as handle:
        data = json.load(handle)
    assert TOP_KEYS <= set(data) and timing.finite_numbers(data) == []
    assert os.path.exists(str(tmp_path / "rep" / "README.md"))
    assert not math.isnan(data["pipeline"]["stages"]["end_to_end"]["fps"])
