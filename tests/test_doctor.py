"""jist-edge doctor: parsers on real text, and the report on this machine."""
import json

import cv2
from click.testing import CliRunner

from jist_edge import doctor
from jist_edge.cli import main
from jist_edge.stream.uri import opencv_build_value, opencv_has_gstreamer


def test_jetson_model_strips_nul(tmp_path):
    path = tmp_path / "model"
    path.write_bytes(b"NVIDIA Jetson Nano Developer Kit\x00")
    assert doctor.jetson_model(str(path)) == "NVIDIA Jetson Nano Developer Kit"
    assert doctor.jetson_model(str(tmp_path / "absent")) is None


def test_l4t_release(tmp_path):
    path = tmp_path / "rel"
    path.write_text("# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64\n")
    assert doctor.l4t_release(str(path)) == "32.7.1"
    assert doctor.l4t_release(str(tmp_path / "none")) is None


def test_gstreamer_detection():
    with_gst = "  Video I/O:\n    FFMPEG:                      YES\n    GStreamer:                   YES (1.14.5)\n"
    without = "  Video I/O:\n    GStreamer:                   NO\n    v4l/v4l2:                    YES\n"
    assert opencv_has_gstreamer(with_gst)
    assert not opencv_has_gstreamer(without)
    assert not opencv_has_gstreamer("")
    assert opencv_build_value("FFMPEG", with_gst) == "YES"
    assert opencv_build_value("GStreamer", with_gst) == "YES (1.14.5)"
    assert opencv_build_value("GUI", without) is None
    # this machine's pip OpenCV (DESIGN.md: no GStreamer) agrees with its own build info
    assert opencv_has_gstreamer(cv2.getBuildInformation()) is ("GStreamer:                   YES" in
                                                                     cv2.getBuildInformation())


def test_report_here_and_advice():
    report = doctor.collect()
    assert report["onnxruntime"]["installed"]
    assert "CPUExecutionProvider" in report["onnxruntime"]["providers"]
    assert report["backends"]["auto"] == report["backends"]["available"][0]
    if not report["tensorrt"]["installed"]:
        assert report["backends"]["auto"] == "onnxruntime"
        assert "tensorrt" in report["backends"]["status"]["tensorrt"]
        assert not report["gpu"]["probed"]
    fake = dict(report, jetson={"model": "NVIDIA Jetson Nano Developer Kit", "l4t": "32.7.1"},
                opencv={"installed": True, "version": "4.5.5", "gstreamer": False, "path": "/x"},
                tensorrt={"installed": False, "reason": "no"})
    tips = doctor.advice(fake)
    assert any("GStreamer" in t for t in tips) and any("system Python" in t for t in tips)


def test_cli_table_and_json():
    runner = CliRunner()
    table = runner.invoke(main, ["doctor"])
    assert table.exit_code == 0, table.output
    assert "auto backend" in table.output and "ONNX Runtime" in table.output
    as_json = runner.invoke(main, ["doctor", "--json"])
    assert as_json.exit_code == 0
    data = json.loads(as_json.output)
    assert set(data) >= {"python", "opencv", "onnxruntime", "tensorrt", "cuda", "gpu", "jetson", "backends"}
