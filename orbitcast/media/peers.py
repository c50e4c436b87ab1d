"""Who is at the other end of a feed's input, for `/api/feeds`.

PyAV (FFmpeg) owns the sockets of the inputs it reads itself and says nothing of the peer. For
a source that listens (a camera or OBS publishing RTMP or MPEG-TS over TCP to us), Linux lists
every TCP socket in /proc/net/tcp and /proc/net/tcp6 with both ends and its inode, which
/proc/self/fd links to: the publisher is the far end of this process's established connection
on the listening port. For a source we reach (RTSP, RTMP or HLS pull), the remote is the host
and port we called. A UDP sender is not known: its datagrams carry the address, but the socket
is unconnected and FFmpeg keeps it.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from urllib.parse import urlsplit

TCP_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
# ESTABLISHED, and CLOSE_WAIT: the sender has finished, what it sent is still being read
CONNECTED = ("01", "08")
DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "rtmp": 1935, "rtmps": 443, "http": 80, "https": 443}


def _address(field: str) -> tuple[str, int]:
    """A /proc/net/tcp{,6} address ("0100007F:1F90"): the kernel prints each 32-bit word of
    the address in host byte order (little-endian here)."""
    hex_ip, _, hex_port = field.partition(":")
    raw = b"".join(bytes.fromhex(hex_ip[i:i + 8])[::-1] for i in range(0, len(hex_ip), 8))
    ip = ipaddress.ip_address(raw)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack listener: the sender came over IPv4
    return str(ip), int(hex_port, 16)


def _text(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def own_socket_inodes(pid: int | str = "self") -> set[int]:
    inodes = set()
    fds = Path(f"/proc/{pid}/fd")
    try:
        names = os.listdir(fds)
    except OSError:
        return inodes
    for name in names:
        try:
            target = os.readlink(fds / name)
        except OSError:  # closed while we looked
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def connected_to_port(local_port: int, inodes: set[int] | None = None,
                      tables: tuple[Path, ...] = TCP_TABLES) -> list[str]:
    """Far ends of TCP connections whose near end is `local_port`, among the
    sockets `inodes` (all of them when None), IPv4 table first."""
    peers = []
    for table in tables:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:  # no IPv6 here, or no /proc
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] not in CONNECTED:
                continue
            if inodes is not None and int(fields[9]) not in inodes:
                continue
            if _address(fields[1])[1] == local_port:
                peers.append(_text(*_address(fields[2])))
    return peers


def publisher_of(listen_address: str) -> str | None:
    """The sender connected to this process's listener on `listen_address` ("host:port")."""
    port = listen_address.rpartition(":")[2]
    if not port.isdigit():
        return None
    peers = connected_to_port(int(port), own_socket_inodes())
    return peers[0] if peers else None


def called_address(url: str) -> str | None:
    """host:port a pulling source reaches (credentials left out); None where the far end is
    not one host we call (UDP, files, lavfi)."""
    parts = urlsplit(url)
    if parts.scheme not in (*DEFAULT_PORTS, "tcp") or not parts.hostname:
        return None
    try:
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:  # a port that is not a number: the open fails with its own reason
        return None
    return None if port is None else _text(parts.hostname, port)
