"""The Nano's CSI capture path as plain functions: nvvidconv scales to the model's size in hardware.

GStreamer is absent here, so the pipeline strings are checked as text; what the CPU saves
is measured by benchmarks/capture.py (see docs/runtime-and-cameras.md).
"""
import pytest

from jist_edge.errors import JistEdgeError
from jist_edge.stream.uri import csi_capture, csi_output_size, csi_pipeline, parse_source_uri


def caps_after_nvvidconv(pipeline):
    """The caps nvvidconv must produce: the element after 'nvvidconv ...'."""
    parts = [p.strip() for p in pipeline.split("!")]
    return parts[[i for i, p in enumerate(parts) if p.startswith("nvvidconv")][0] + 1]


def test_nvvidconv_scales_to_the_model_size_before_the_cpu_converts():
    text = csi_pipeline(0, 1280, 720, 30, 0, out_size=(640, 480))
    assert "video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1" in text  # the sensor mode
    assert caps_after_nvvidconv(text) == "video/x-raw,width=640,height=480,format=BGRx"
    parts = [p.strip() for p in text.split("!")]
    assert parts.index("videoconvert") > parts.index(caps_after_nvvidconv(text))  # CPU work after scaling
    full = csi_pipeline(0, 1280, 720, 30, 0)
    assert caps_after_nvvidconv(full) == "video/x-raw,format=BGRx"  # unchanged when not scaling
    with pytest.raises(JistEdgeError, match="output width"):
        csi_pipeline(0, 1280, 720, 30, 0, out_size=(0, 480))


@pytest.mark.parametrize("capture, model, flip, want", [
    ((1280, 720), (640, 480), 0, (640, 480)),      # the default model, 4x fewer pixels
    ((1280, 720), (320, 240), 2, (320, 240)),
    ((1280, 720), (99, 73), 0, (100, 74)),          # odd sides rounded up to even
    ((1280, 720), (1920, 1080), 0, None),           # never enlarged in hardware: the full frame
    ((1280, 720), (1280, 720), 0, None),            # same size: nothing to scale
    ((1280, 720), (640, 900), 0, (640, 720)),       # one side clamped to what was captured
    ((1280, 720), (480, 640), 1, (480, 640)),       # a 90-degree flip: compared with 720x1280
    ((1280, 720), None, 0, None),                   # full frames asked for
])
def test_output_size(capture, model, flip, want):
    assert csi_output_size(capture, model, flip) == want


def test_csi_capture_combines_defaults_uri_and_options():
    spec = parse_source_uri("csi://1?width=1920&height=1080&fps=60")
    pipeline, description = csi_capture(spec, {"width": None, "height": None, "fps": 30, "flip": 2}, (640, 480))
    assert "width=1920,height=1080,framerate=30/1" in pipeline and "flip-method=2" in pipeline
    assert caps_after_nvvidconv(pipeline) == "video/x-raw,width=640,height=480,format=BGRx"
    assert description == "CSI camera 1 (1920x1080 at 30 fps, scaled to 640x480 by nvvidconv)"
    pipeline, description = csi_capture(parse_source_uri("csi://0"), {}, None)  # --full-frame
    assert "width=1280,height=720" in pipeline and caps_after_nvvidconv(pipeline) == "video/x-raw,format=BGRx"
    assert "scaled" not in description
