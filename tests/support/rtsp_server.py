"""A GStreamer RTSP server for the tests: serves one real video clip on 127.0.0.1.

Run it with Debian's ``/usr/bin/python3`` (python3-gi and the GStreamer RTSP server bindings are
Debian packages, not in the venv); ``tests/support/rtsp.py`` starts and stops it.

Modes:

- ``loop``: a live, shared, endless stream. A producer pipeline decodes the clip in real time and
  seeks back to the start at its end; the RTSP media reads the latest decoded picture through
  ``intervideosink``/``intervideosrc`` and re-encodes it with x264 (zerolatency). The RTSP side
  never sees the loop, so its timestamps keep increasing, like a real camera's.
- ``once``: every client gets the file from frame 0 (no re-encode), then end of stream.

Prints ``READY rtsp://127.0.0.1:PORT/MOUNT`` on stdout once it listens; exits 2 if the port cannot
be bound, 1 on a pipeline error, 0 on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("rtsp_server")

_INTER_CHANNEL = "gridwatch-test-clip"
# x264 settings for a camera-like stream: no B-frames, a key frame every second so a new client
# starts decoding quickly, and repeated SPS/PPS (config-interval) for clients that join late.
_ENCODE = (
    "videoconvert ! video/x-raw,format=I420 "
    "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=1500 "
    "! video/x-h264,profile=constrained-baseline "
    "! rtph264pay name=pay0 pt=96 config-interval=1"
)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--clip", type=Path, required=True, help="video file to serve")
    parser.add_argument("--mount", default="/cam1", help="mount path, e.g. /cam1")
    parser.add_argument("--mode", choices=("loop", "once"), default="loop")
    parser.add_argument("--fps", default=None, help="live stream frame rate, e.g. 15/1 (default: the clip's)")
    args = parser.parse_args(argv)
    if not args.mount.startswith("/"):
        parser.error("--mount must start with /")
    if not args.clip.is_file():
        parser.error(f"--clip {args.clip} is not a file")
    return args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="rtsp_server: %(message)s")
    args = _parse_args(argv)

    import gi  # type: ignore[import-not-found, unused-ignore]  # Debian's python3-gi, not in the venv

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer  # type: ignore[import-not-found, unused-ignore]

    Gst.init(None)
    loop = GLib.MainLoop()
    exit_code = 0
    clip = str(args.clip.resolve())

    def fail(code: int, message: str) -> None:
        nonlocal exit_code
        log.error("%s", message)
        exit_code = code
        loop.quit()

    producer: Any = None
    factory = GstRtspServer.RTSPMediaFactory()
    if args.mode == "loop":
        location = clip.replace("\\", "\\\\").replace('"', '\\"')
        producer = Gst.parse_launch(
            f'filesrc location="{location}" ! decodebin ! videoconvert ! video/x-raw,format=I420 '
            f"! intervideosink name=sink channel={_INTER_CHANNEL} sync=true"
        )

        def on_producer_message(_bus: Any, message: Any) -> bool:
            if message.type == Gst.MessageType.EOS:
                # Back to frame 0; the RTSP media keeps its own clock, so this is invisible to clients.
                if not producer.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT, 0):
                    fail(1, "could not seek the clip back to its start")
            elif message.type == Gst.MessageType.ERROR:
                error, debug = message.parse_error()
                fail(1, f"producer pipeline error: {error.message} ({debug})")
            return True

        bus = producer.get_bus()
        bus.add_signal_watch()
        bus.connect("message", on_producer_message)
        # Wait until the first picture is decoded, then give the RTSP side the clip's exact format:
        # before that intervideosrc would start at its default 320x240 and keep it for a while.
        producer.set_state(Gst.State.PLAYING)
        result, _state, _pending = producer.get_state(10 * Gst.SECOND)
        caps = producer.get_by_name("sink").get_static_pad("sink").get_current_caps()
        if result == Gst.StateChangeReturn.FAILURE or caps is None:
            log.error("cannot play %s", clip)
            producer.set_state(Gst.State.NULL)
            return 1
        picture = caps.get_structure(0)
        width, height = picture.get_value("width"), picture.get_value("height")
        ok, fps_n, fps_d = picture.get_fraction("framerate")
        fps = args.fps or (f"{fps_n}/{fps_d}" if ok and fps_n > 0 else "30/1")
        factory.set_launch(
            f"( intervideosrc channel={_INTER_CHANNEL} "
            f"! video/x-raw,format=I420,width={width},height={height},framerate={fps} ! {_ENCODE} )"
        )
        factory.set_shared(True)
    else:
        location = clip.replace("\\", "\\\\").replace('"', '\\"')
        factory.set_launch(
            f'( filesrc location="{location}" ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )'
        )
        factory.set_shared(False)

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    server.get_mount_points().add_factory(args.mount, factory)
    if server.attach(None) == 0:
        log.error("cannot listen on 127.0.0.1:%d (port taken?)", args.port)
        if producer is not None:
            producer.set_state(Gst.State.NULL)
        return 2

    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, lambda *_: loop.quit() or False)

    print(f"READY rtsp://127.0.0.1:{server.get_bound_port()}{args.mount}", flush=True)
    try:
        loop.run()
    finally:
        if producer is not None:
            producer.set_state(Gst.State.NULL)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
