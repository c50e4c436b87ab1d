"""An RTSP server for the RTSP-over-TCP pull test: GStreamer's gst-rtsp-server (Debian's
gir1.2-gst-rtsp-server-1.0), run by Debian's /usr/bin/python3, which has PyGObject.

    /usr/bin/python3 tests/rtsp_gst_server.py PORT MEDIA.mp4

Serves MEDIA (H.264 + AAC in MP4) at rtsp://127.0.0.1:PORT/live, at real time, from its start
for each client, and offers interleaved TCP only, so a client that asks for UDP is refused:
what plays went over TCP. Prints "ready" once it listens.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402


def main() -> None:
    port, media = sys.argv[1], sys.argv[2]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f'( filesrc location="{media}" ! qtdemux name=d '
        "d.video_0 ! queue ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1 "
        "d.audio_0 ! queue ! aacparse ! rtpmp4gpay name=pay1 pt=97 )"
    )
    factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
    server.get_mount_points().add_factory("/live", factory)
    if server.attach(None) == 0:
        raise SystemExit(f"cannot listen on port {port}")
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
