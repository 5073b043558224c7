"""The cameras of ``capacity.py``: one GStreamer RTSP server on 127.0.0.1 serving the shared clip live.

Run with Debian's ``/usr/bin/python3`` (python3-gi and the GStreamer RTSP server bindings are Debian
packages, not in the venv); ``capacity.py`` starts and stops it. Like ``tests/support/rtsp_server.py``
in ``loop`` mode, a producer pipeline decodes the clip in real time and seeks back to its start at its
end, so the RTSP side sees one endless live stream with increasing timestamps, like a real camera's.
Here the picture is also scaled to ``--width`` x ``--height`` and served at ``--fps``.

Mount points ``/cam1`` .. ``/camN`` share one encoder: every camera is its own RTSP session (gridwatch
opens, reads and decodes each stream on its own), but the x264 encoding, which real cameras do in their
own hardware, is paid once on this machine, not N times on the cores the benchmark measures.

Prints ``READY rtsp://127.0.0.1:PORT`` on stdout once it listens; exits 2 if the port cannot be
bound, 1 on a pipeline error, 0 on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("capacity_rtsp")

_INTER_CHANNEL = "gridwatch-capacity-clip"
# Camera-like x264: no B-frames, a key frame every second at the served rate (a new client starts
# decoding quickly), SPS/PPS repeated for clients that join late.
_ENCODE = (
    "videoconvert ! video/x-raw,format=I420 "
    "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} bitrate={kbps} "
    "! video/x-h264,profile=constrained-baseline "
    "! rtph264pay name=pay0 pt=96 config-interval=1"
)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1")
    parser.add_argument("--clip", type=Path, required=True, help="video file to serve")
    parser.add_argument("--cameras", type=int, required=True, help="mount points /cam1 .. /camN")
    parser.add_argument("--width", type=int, required=True)
    parser.add_argument("--height", type=int, required=True)
    parser.add_argument("--fps", type=int, default=5, help="frames per second served")
    args = parser.parse_args(argv)
    if not args.clip.is_file():
        parser.error(f"--clip {args.clip} is not a file")
    return args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="capacity_rtsp: %(message)s")
    args = _parse_args(argv)

    import gi  # type: ignore[import-not-found, unused-ignore]  # Debian's python3-gi, not in the venv

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer  # type: ignore[import-not-found, unused-ignore]

    Gst.init(None)
    loop = GLib.MainLoop()
    exit_code = 0
    location = str(args.clip.resolve()).replace("\\", "\\\\").replace('"', '\\"')

    def fail(code: int, message: str) -> None:
        nonlocal exit_code
        log.error("%s", message)
        exit_code = code
        loop.quit()

    producer: Any = Gst.parse_launch(
        f'filesrc location="{location}" ! decodebin ! videorate ! video/x-raw,framerate={args.fps}/1 '
        f"! videoconvert ! videoscale ! video/x-raw,format=I420,width={args.width},height={args.height} "
        f"! intervideosink name=sink channel={_INTER_CHANNEL} sync=true"
    )

    def on_producer_message(_bus: Any, message: Any) -> bool:
        if message.type == Gst.MessageType.EOS:
            # Back to frame 0; the RTSP media keeps its own clock, so the loop is invisible to clients.
            if not producer.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT, 0):
                fail(1, "could not seek the clip back to its start")
        elif message.type == Gst.MessageType.ERROR:
            error, debug = message.parse_error()
            fail(1, f"producer pipeline error: {error.message} ({debug})")
        return True

    bus = producer.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_producer_message)
    producer.set_state(Gst.State.PLAYING)
    result, _state, _pending = producer.get_state(10 * Gst.SECOND)
    if result == Gst.StateChangeReturn.FAILURE:
        log.error("cannot play %s", args.clip)
        producer.set_state(Gst.State.NULL)
        return 1

    # About 0.15 bit per pixel per second at the served rate, as a camera's sub-stream; at least 256 kbit/s.
    kbps = max(256, args.width * args.height * args.fps * 15 // 100_000)

    class OneMediaFactory(GstRtspServer.RTSPMediaFactory):  # type: ignore[misc, unused-ignore]
        """One media for every mount point (the default key is the request's URL: one media per mount)."""

        def do_gen_key(self, _url: Any) -> str:
            return "capacity"

    factory = OneMediaFactory()
    factory.set_launch(
        f"( intervideosrc channel={_INTER_CHANNEL} "
        f"! video/x-raw,format=I420,width={args.width},height={args.height},framerate={args.fps}/1 "
        f"! {_ENCODE.format(gop=args.fps, kbps=kbps)} )"
    )
    factory.set_shared(True)

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    for camera in range(1, args.cameras + 1):
        mounts.add_factory(f"/cam{camera}", factory)
    if server.attach(None) == 0:
        log.error("cannot listen on 127.0.0.1:%d (port taken?)", args.port)
        producer.set_state(Gst.State.NULL)
        return 2

    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, lambda *_: loop.quit() or False)

    print(f"READY rtsp://127.0.0.1:{server.get_bound_port()}", flush=True)
    try:
        loop.run()
    finally:
        producer.set_state(Gst.State.NULL)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
