"""jist-edge doctor: parsers on real text, and the report on this machine."""
import json

import cv2
from click.testing import CliRunner

from jist_edge.cli import doctor
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


# Excerpts of real cv2.getBuildInformation() output: JetPack 4.6's OpenCV 4.1.1 and pip's OpenCV 5.0.
JETPACK_411 = """
  GUI:
    GTK+:                        YES (ver 2.24.32)

  Video I/O:
    FFMPEG:                      YES
      avcodec:                   YES (57.107.100)
    GStreamer:                   YES (1.14.5)
    v4l/v4l2:                    YES (linux/videodev2.h)
"""
PIP_50 = """
  GUI:                           NONE

  Video I/O:
    DC1394:                      NO
    FFMPEG:                      YES
      avcodec:                   YES (61.19.101)
    GStreamer:                   NO
    v4l/v4l2:                    YES (linux/videodev2.h)
"""


def test_build_information_values_from_real_text():
    assert opencv_has_gstreamer(JETPACK_411) and not opencv_has_gstreamer(PIP_50)
    assert not opencv_has_gstreamer("")
    assert opencv_build_value("GStreamer", JETPACK_411) == "YES (1.14.5)"
    assert opencv_build_value("FFMPEG", PIP_50) == "YES"
    assert opencv_build_value("GUI", PIP_50) == "NONE"  # the headless wheel, which --display refuses
    assert opencv_build_value("GTK+", PIP_50) is None


def test_gstreamer_answer_agrees_with_what_opencv_can_open():
    """The parser's verdict on this machine's OpenCV against behaviour: a GStreamer test pipeline
    opens exactly when OpenCV was built with GStreamer."""
    cap = cv2.VideoCapture("videotestsrc num-buffers=1 ! videoconvert ! appsink", cv2.CAP_GSTREAMER)
    try:
        opens = cap.isOpened()
    finally:
        cap.release()
    assert opencv_has_gstreamer() is opens


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
