"""Cost of the fd-level redaction: lines/s written to stderr through ``redacted_stdio`` vs. straight to it.

A child process registers 51 secrets (an RTSP password with ``@ % ! :`` and 50 others, about 400
masked forms), then writes the same FFmpeg-like lines to descriptor 2 twice: once straight (the
baseline) and once through the redacting pipe, timing each until its last byte is written (the
pipe's 1 MiB fills, so the redacted figure is the pump's rate). Its stderr goes to /dev/null.
Printed: both rates, their ratio, and last one JSON line.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

LINES = 200_000
CHILD = textwrap.dedent(
    """
    import json, os, sys, time
    from gridwatch.core.fd_redact import redacted_stdio
    from gridwatch.core.redact import register_secrets

    register_secrets([("viewer", "Gw@ta%5!x:q7")] + [f"camera-password-{i:03d}" for i in range(50)])
    line = ("[rtsp @ 0x55d0c0] RTP: missed 3 packets, decoding frame " * 2 + "\\n").encode()
    lines = int(sys.argv[1])

    def write_all() -> float:
        start = time.perf_counter()
        for _ in range(lines):
            os.write(2, line)
        return time.perf_counter() - start

    plain_s = write_all()
    with redacted_stdio():
        redacted_s = write_all()
    print(json.dumps({"plain_s": plain_s, "redacted_s": redacted_s, "line_bytes": len(line)}))
    """
)


def main() -> int:
    repo = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(LINES)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=repo,
        env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"},
        check=True,
        text=True,
    )
    child = json.loads(result.stdout)
    plain = LINES / child["plain_s"]
    redacted = LINES / child["redacted_s"]
    ratio = redacted / plain
    print(f"{LINES} lines of {child['line_bytes']} bytes to stderr, 51 secrets registered")
    print(f"  straight to fd 2 (baseline): {plain:,.0f} lines/s")
    print(f"  through the redacting pipe:  {redacted:,.0f} lines/s ({redacted * child['line_bytes'] / 1e6:.1f} MB/s)")
    print(f"  ratio redacted / baseline: {ratio:.3f}")
    print(
        json.dumps(
            {
                "benchmark": "fd_redaction",
                "lines": LINES,
                "baseline_lines_per_s": round(plain),
                "redacted_lines_per_s": round(redacted),
                "ratio": round(ratio, 4),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
