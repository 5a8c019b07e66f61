"""The bench's settings: the two modes and what --quick, --max-places, --large and --img-size change."""
from typing import Any, Dict, Optional, Sequence

SCHEMA = "jist-edge-bench/1"

MODES = {
    "quick": {
        "img_size": (120, 160), "extra_img_sizes": [], "encoder_rounds": 8, "encoder_budget_s": 8.0,
        "seq_lens": [3, 5], "streaming_rounds": 4, "streaming_budget_s": 6.0,
        "test_seq_lens": [1, 3, 5, 10], "seq_map_size": 1000, "seq_queries": 50, "seq_runs": 30,
        "map_sizes": [1000, 5000], "efs": [16, 64], "queries": 50, "dim_sizes": [2000],
        "kinds_sizes": [1000, 5000], "max_places": 5000,
        "pipeline_runs": 15, "pipeline_warmup": 5, "pipeline_map_frames": 20, "soak_frames": 300,
        "precision_rounds": 6, "precision_budget_s": 8.0, "tuning_rounds": 0, "tuning_budget_s": 0.0,
        "e2e_runs": 10, "capture_frames": 30,
        "filter_sizes": [10000], "filter_frames": 100, "filter_stats_size": 2000,
        "serve_rounds": 3, "serve_frames": 8, "serve_clip_frames": 24,
    },
    "default": {
        "img_size": (480, 640), "extra_img_sizes": [(240, 320)], "encoder_rounds": 20, "encoder_budget_s": 40.0,
        "seq_lens": [3, 5, 10], "streaming_rounds": 8, "streaming_budget_s": 30.0,
        "test_seq_lens": [1, 2, 3, 5, 7, 10, 15, 20], "seq_map_size": 5000, "seq_queries": 300, "seq_runs": 200,
        "map_sizes": [1000, 10000, 100000], "efs": [16, 32, 64, 128, 256], "queries": 300,
        # index kinds (runtime memory per kind) run to --max-places; 1M builds are cached in the bench cache
        "kinds_sizes": [10000, 100000, 1000000], "max_places": 100000,
        "dim_sizes": [10000, 100000],
        "pipeline_runs": 60, "pipeline_warmup": 10, "pipeline_map_frames": 60, "soak_frames": 5000,
        "precision_rounds": 20, "precision_budget_s": 40.0, "tuning_rounds": 10, "tuning_budget_s": 120.0,
        "e2e_runs": 40,
        "capture_frames": 100,
        "filter_sizes": [10000, 100000], "filter_frames": 400, "filter_stats_size": 20000,
        "serve_rounds": 10, "serve_frames": 30, "serve_clip_frames": 60,
    },
}


def settings(quick: bool = False, large: bool = False, img_size: Optional[Sequence[int]] = None,
             overrides: Optional[Dict[str, Any]] = None, max_places: Optional[int] = None) -> Dict[str, Any]:
    """The mode's settings; --max-places N (--large: 1,000,000) lets the index-kinds table run to N places
    (the exact-vs-hnswlib-at-each-ef table stays at most 100k); --img-size replaces the main size."""
    cfg = dict(MODES["quick" if quick else "default"])
    cfg["mode"] = "quick" if quick else "default"
    if large:
        max_places = max(int(max_places or 0), 1000000)
    if max_places is not None:
        cfg["max_places"] = int(max_places)
        cfg["kinds_sizes"] = sorted(set([s for s in cfg["kinds_sizes"] if s < max_places] + [int(max_places)]))
        cfg["map_sizes"] = [s for s in cfg["map_sizes"] if s <= max_places] or [int(max_places)]
        cfg["filter_sizes"] = sorted(set([s for s in cfg["filter_sizes"] if s < max_places] + [int(max_places)]))
        cfg["mode"] += "+max{}".format(int(max_places))
    else:
        cfg["kinds_sizes"] = [s for s in cfg["kinds_sizes"] if s <= cfg["max_places"]]
    if img_size is not None:
        cfg["img_size"] = (int(img_size[0]), int(img_size[1]))
    cfg.update(overrides or {})
    return cfg
