"""A live H.264 RTSP server on loopback for the stream tests (GStreamer's RTSP server).

Run with the system Python, which has the GStreamer bindings (Debian: python3-gi,
gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-base/-good/-ugly):

    /usr/bin/python3 tests/rtsp_server.py PORT [FPS] [WIDTH] [HEIGHT]

serves rtsp://127.0.0.1:PORT/live and prints "ready" once listening.
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    port = sys.argv[1]
    fps, width, height = (int(v) for v in (sys.argv[2:] + ["30", "320", "240"][len(sys.argv) - 2 :])[:3])
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f"( videotestsrc is-live=true pattern=ball ! video/x-raw,width={width},height={height},framerate={fps}/1 "
        f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} "
        f"! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    factory.set_shared(True)
    server.get_mount_points().add_factory("/live", factory)
    if server.attach(None) == 0:
        raise SystemExit(f"cannot listen on port {port}")
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
