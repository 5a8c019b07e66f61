"""The shared workspace where `export`, `map build` and `run` meet.

After ``jist-edge export --checkpoint X`` and ``jist-edge map build --video route.mp4``,
``jist-edge run --camera 0`` finds the model and the map here without more options.
"""
import os
from typing import Optional

ENV_VAR = "JIST_EDGE_HOME"
DEFAULT_DIR = os.path.join("~", ".jist-edge")


def workspace_dir(override: Optional[str] = None) -> str:
    """--workspace beats $JIST_EDGE_HOME beats ~/.jist-edge."""
    path = override or os.environ.get(ENV_VAR) or DEFAULT_DIR
    if path.startswith("~") and "HOME" in os.environ and not os.environ["HOME"].strip():
        from jist_edge.errors import JistEdgeError

        # expanduser would give /.jist-edge, silently, at the root of the file system
        raise JistEdgeError("HOME is empty, so there is no ~/.jist-edge: give --workspace DIR or set {}".format(ENV_VAR))
    return os.path.abspath(os.path.expanduser(path))


def model_dir(override: Optional[str] = None) -> str:
    return os.path.join(workspace_dir(override), "model")


def map_dir(override: Optional[str] = None) -> str:
    return os.path.join(workspace_dir(override), "map")


def engine_dir(override: Optional[str] = None) -> str:
    return os.path.join(workspace_dir(override), "engines")
