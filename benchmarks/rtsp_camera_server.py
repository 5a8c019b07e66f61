"""A real RTSP camera for the outage tests: GStreamer's RTSP server streaming JPEG frames as H.264.

Run with the system python3 (it needs python3-gi and gir1.2-gst-rtsp-server-1.0; a venv has no gi):
    /usr/bin/python3 benchmarks/rtsp_camera_server.py FRAMES_DIR [PORT] [FPS]
FRAMES_DIR holds frame_00000.jpg, frame_00001.jpg, ... (played in a loop). PORT 0 (the default)
takes a free port. The bound port is printed as "PORT <n>" on stdout once the server listens.
The mount point is /cam.
"""
import os
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    frames = os.path.abspath(sys.argv[1])
    port = sys.argv[2] if len(sys.argv) > 2 else "0"
    fps = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        "( multifilesrc location={}/frame_%05d.jpg loop=true caps=image/jpeg,framerate={}/1 ! jpegdec ! "
        "videoconvert ! video/x-raw,format=I420 ! x264enc tune=zerolatency speed-preset=ultrafast "
        "key-int-max={} ! rtph264pay name=pay0 pt=96 config-interval=1 )".format(frames, fps, fps))
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        sys.exit("cannot listen on 127.0.0.1:{}".format(port))
    print("PORT {}".format(server.get_bound_port()), flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
