"""build_map's index options as one IndexSpec: the same map as the older keywords, checked before any encoding."""
import pytest
from map_routes import route_frames

from jist_edge import IndexSpec, JistEdgeError, build_map
from jist_edge.maps.build import rebuild_map


def test_index_spec_and_the_old_keywords_make_the_same_map(tiny_bundle, tmp_path):
    frames = route_frames(16, 64, 96, seed=4)
    new = build_map(tiny_bundle, frames, str(tmp_path / "spec"), index=IndexSpec("hnsw", M=8, ef_construction=40, seed=5))
    old = build_map(tiny_bundle, frames, str(tmp_path / "keywords"), index_kind="hnsw", M=8, ef_construction=40, seed=5)
    assert new.manifest["index"] == old.manifest["index"] and new.manifest["index"]["M"] == 8
    assert {n: f["sha256"] for n, f in new.manifest["files"].items()} == \
        {n: f["sha256"] for n, f in old.manifest["files"].items()}
    again = rebuild_map(tiny_bundle, new, str(tmp_path / "rebuilt"), index=IndexSpec("hnsw-pca", reduced_dim=8, rerank=4))
    assert again.manifest["index"]["kind"] == "hnsw-pca" and again.manifest["index"]["reduced_dim"] == 8


def test_index_spec_refusals(tiny_bundle, tmp_path):
    frames = route_frames(8, 64, 96, seed=4)
    with pytest.raises(TypeError, match="not both"):
        build_map(tiny_bundle, frames, str(tmp_path / "both"), index=IndexSpec(), M=8)
    with pytest.raises(TypeError, match="unexpected keyword"):
        build_map(tiny_bundle, frames, str(tmp_path / "typo"), ef_constrution=8)
    with pytest.raises(JistEdgeError, match="reduced_dim 100000 exceeds the model's"):
        build_map(tiny_bundle, frames, str(tmp_path / "big"), index=IndexSpec("hnsw-pca", reduced_dim=100000))
    with pytest.raises(JistEdgeError, match="index kind 'faiss'"):
        IndexSpec("faiss")
    assert not (tmp_path / "big").exists() and not (tmp_path / "both").exists()
