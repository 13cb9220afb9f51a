"""A link with latency for kernels without the netem qdisc: relays Ethernet frames between a
tap on the bridge and a tap that is a host's eth0, holding each frame the host sends for
``--delay-ms`` (the same as ``tc qdisc add dev eth0 root netem delay D`` on the host).

Run inside the switch namespace (``ip netns exec SWITCH python delay_line.py ...``): it attaches
to the bridge-side tap there, then enters the host's namespace to attach to the host's tap.
Frames keep their order because the delay is constant. Prints ``relaying`` once both taps are
attached; stops on SIGTERM.
"""
from __future__ import annotations

import argparse
import collections
import ctypes
import fcntl
import os
import selectors
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
CLONE_NEWNET = 0x40000000
MAX_FRAME = 65536


def attach_tap(name: str) -> int:
    """An fd carrying the frames of the existing tap ``name`` in the current namespace."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def enter_namespace(name: str) -> None:
    # os.setns exists only from Python 3.12.
    libc = ctypes.CDLL(None, use_errno=True)
    with open(f"/run/netns/{name}") as handle:
        if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"setns into {name}: {os.strerror(error)}")


def write_frame(fd: int, frame: bytes) -> None:
    try:
        os.write(fd, frame)
    except OSError:
        pass  # the tap is down (a cut link) or full: a lost frame, as on a wire


def relay(switch_fd: int, host_fd: int, delay: float) -> None:
    held: collections.deque[tuple[float, bytes]] = collections.deque()  # frames from the host
    selector = selectors.DefaultSelector()
    selector.register(switch_fd, selectors.EVENT_READ, "from switch")
    selector.register(host_fd, selectors.EVENT_READ, "from host")
    while True:
        now = time.monotonic()
        while held and held[0][0] <= now:
            write_frame(switch_fd, held.popleft()[1])
        timeout = max(0.0, held[0][0] - now) if held else None
        for key, _ in selector.select(timeout):
            fd = key.fd
            # Drain what is queued now, so one wake-up moves a burst, not a frame.
            for _ in range(256):
                try:
                    frame = os.read(fd, MAX_FRAME)
                except BlockingIOError:
                    break
                except OSError:
                    break  # the tap went down; it comes back with the link
                if key.data == "from host":
                    held.append((time.monotonic() + delay, frame))
                else:
                    write_frame(host_fd, frame)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--switch-tap", required=True)
    parser.add_argument("--host-namespace", required=True)
    parser.add_argument("--host-tap", required=True)
    parser.add_argument("--delay-ms", type=float, required=True)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    switch_fd = attach_tap(args.switch_tap)
    enter_namespace(args.host_namespace)
    host_fd = attach_tap(args.host_tap)
    print("relaying", flush=True)
    relay(switch_fd, host_fd, args.delay_ms / 1000)


if __name__ == "__main__":
    main()
