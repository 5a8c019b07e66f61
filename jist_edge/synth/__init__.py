"""Synthetic street routes (database and query passes) for demos, tests and benchmarks."""
from jist_edge.synth.render import Condition, render_frame
from jist_edge.synth.route import Route
from jist_edge.synth.dataset import make_route_dataset
from jist_edge.synth.traversal import Traversal, make_traversal, query_condition, write_images, write_video

__all__ = ["Route", "Condition", "Traversal", "render_frame", "make_traversal", "query_condition", "write_images",
           "write_video", "make_route_dataset"]
