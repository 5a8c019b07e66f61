"""record_stream: a streamed pass kept per full window, as the demo scores it."""
from map_routes import route_frames

from jist_edge import Localizer, build_map
from jist_edge.pipeline.recording import record_stream


def test_record_stream_keeps_every_full_window(tiny_bundle, tmp_path):
    place_map = build_map(tiny_bundle, route_frames(24, 64, 96, seed=6), str(tmp_path / "map"))
    loc = Localizer(tiny_bundle, place_map, top_k=3)
    seen = []
    try:
        streamed, run = record_stream(loc, route_frames(12, 64, 96, seed=6, shift=2), seen.append)
    finally:
        loc.close()
    L = place_map.seq_len
    assert len(seen) == 12 and run["frames"] == 12
    assert streamed["windows"] == [list(range(i, i + L)) for i in range(12 - L + 1)]
    assert all(len(ids) == 3 for ids in streamed["ids"]) and len(streamed["descriptors"]) == 12 - L + 1
    assert all(e is not None and e.state in ("initializing", "tracking", "lost") for e in streamed["estimates"])
    assert streamed["setup"]["method"] == loc.matcher.method and streamed["setup"]["ms_per_query"] >= 0
