"""Several maps of the same model -> one map of all their drives, without re-encoding a frame.

The merged map is written by the same code as a build of all the routes at once
(``maps.build.write_drives_map``): the drives' frame descriptors and frame tables in
order, SeqGeM windows within each drive, one index over everything. So merging the maps
of routes A and B gives the files a build of A and B together gives.
"""
import os
from typing import Any, Dict, List, Optional, Sequence

from jist_edge.errors import JistEdgeError
from jist_edge.maps.build import routes_from_map, write_drives_map
from jist_edge.search.index import AUTO, IndexSpec
from jist_edge.maps.store import PlaceMap, load_map
from jist_edge.maps.write import refuse_overwrite


class MapBundle(object):
    """The model identity a map's manifest records: enough to write another map of that model."""

    def __init__(self, entry: Dict[str, Any], dim: int, seq_len: int) -> None:
        self.bundle_id = str(entry["bundle_id"])
        self.path = entry.get("path")
        self.random_init = bool(entry.get("random_init", False))
        self.height, self.width = int(entry["height"]), int(entry["width"])
        self.seqgem_p, self.seqgem_eps = float(entry["seqgem_p"]), float(entry["seqgem_eps"])
        self.dim, self.seq_len = int(dim), int(seq_len)


def check_compatible(maps: Sequence[PlaceMap]) -> None:
    """Refuse maps of another input size, sequence length or model, naming both maps."""
    first = maps[0]
    for other in maps[1:]:
        a, b = first.manifest["bundle"], other.manifest["bundle"]
        if (a["height"], a["width"]) != (b["height"], b["width"]):
            raise JistEdgeError("cannot merge map {} (input {}x{}) with map {} (input {}x{}): they come from "
                                "models of different input size".format(first.path, a["height"], a["width"],
                                                                        other.path, b["height"], b["width"]))
        if first.seq_len != other.seq_len:
            raise JistEdgeError("cannot merge map {} (L={}) with map {} (L={}); rebuild one with `jist-edge map "
                                "build --from-map ... --seq-len` first".format(first.path, first.seq_len,
                                                                              other.path, other.seq_len))
        if first.bundle_id != other.bundle_id:
            raise JistEdgeError("cannot merge map {} (model bundle {}) with map {} (model bundle {}): their "
                                "descriptors come from different models".format(first.path, first.bundle_id,
                                                                                other.path, other.bundle_id))


def merge_maps(map_paths: Sequence[str], out_dir: str, bundle: Any = None, fp16: Optional[bool] = None,
               index_kind: str = AUTO, index: Optional[IndexSpec] = None, force: bool = False) -> PlaceMap:
    """One verified map of every drive of ``map_paths``, in that order.

    ``bundle``: when given, every map must belong to it. ``fp16``: store float16 sequence
    descriptors (default: when every input does). ``index``: hnswlib settings (default: the first
    map's M, ef_construction and seed with ``index_kind``). Inputs are read into memory before the
    output is written, so ``out_dir`` may be one of them (with ``force``).
    """
    if len(map_paths) < 2:
        raise JistEdgeError("map merge needs at least two maps, got {}".format(len(map_paths)))
    maps = [load_map(p, bundle) for p in map_paths]
    check_compatible(maps)
    refuse_overwrite(out_dir, force)
    first = maps[0]
    writer_bundle = bundle or MapBundle(first.manifest["bundle"], first.dim, first.seq_len)
    if fp16 is None:
        fp16 = all(m.manifest["storage"].get("sequence_dtype") == "float16" for m in maps)
    if index is None:
        meta = first.manifest["index"]
        index = IndexSpec(index_kind, meta["M"], meta["ef_construction"], meta["random_seed"],
                          int(meta.get("reduced_dim", IndexSpec().reduced_dim)),
                          int(meta.get("rerank", IndexSpec().rerank)))
    routes = []  # type: List[Any]
    for place_map in maps:
        routes.extend(routes_from_map(place_map))
    return write_drives_map(writer_bundle, routes, os.path.abspath(out_dir), first.seq_len, bool(fp16), index,
                            force)
