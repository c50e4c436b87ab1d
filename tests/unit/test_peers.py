"""The far end of a feed's input, from the kernel's socket tables (orbitcast/media/peers.py)."""

from __future__ import annotations

import socket

import pytest

from orbitcast.media.peers import called_address, connected_to_port, own_socket_inodes, publisher_of


def _listener(family: int, host: str) -> socket.socket:
    s = socket.socket(family)
    s.bind((host, 0))
    s.listen()
    return s


def test_the_publisher_is_the_far_end_of_the_connection_to_our_listening_port():
    with _listener(socket.AF_INET, "127.0.0.1") as server:
        port = server.getsockname()[1]
        assert publisher_of(f"127.0.0.1:{port}") is None  # nobody yet
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = server.accept()
            with accepted:
                host, client_port = client.getsockname()
                assert publisher_of(f"127.0.0.1:{port}") == f"{host}:{client_port}"
        # our own outgoing end is not mistaken for a publisher: its local port is not the listener's
        assert all(not p.endswith(f":{port}") for p in connected_to_port(port, own_socket_inodes()))


def test_a_dual_stack_listener_names_an_ipv4_sender_as_ipv4_and_an_ipv6_one_in_brackets():
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    try:
        server = _listener(socket.AF_INET6, "::")
    except OSError:
        pytest.skip("no IPv6 here")
    with server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as v4:
            a, _ = server.accept()
            with a:
                assert publisher_of(f"[::]:{port}") == "127.0.0.1:%d" % v4.getsockname()[1]
        try:
            v6 = socket.create_connection(("::1", port))
        except OSError:
            return
        with v6:
            b, _ = server.accept()
            with b:
                assert f"[::1]:{v6.getsockname()[1]}" in connected_to_port(port, own_socket_inodes())


def test_a_connection_of_another_process_is_not_ours():
    with _listener(socket.AF_INET, "127.0.0.1") as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)):
            accepted, _ = server.accept()
            with accepted:
                assert connected_to_port(port, inodes=set()) == []
                assert len(connected_to_port(port, inodes=None)) == 1


@pytest.mark.parametrize("url,address", [
    ("rtsp://user:secret@camera.local/stream1", "camera.local:554"),
    ("rtsp://10.0.0.5:8554/live", "10.0.0.5:8554"),
    ("rtmp://relay.example/live/key", "relay.example:1935"),
    ("https://[2001:db8::1]/feed/index.m3u8", "[2001:db8::1]:443"),
    ("http://origin:8080/a.m3u8", "origin:8080"),
    ("tcp://sender:9000", "sender:9000"),
    ("tcp://sender", None),  # no port: FFmpeg refuses it with its own reason
    ("udp://239.0.0.1:5000", None),  # the group, not a sender
    ("lavfi:testsrc2", None),
    ("/media/clip.mp4", None),
    ("rtsp://camera:notaport/x", None),
])
def test_a_pulled_source_names_the_host_and_port_it_calls_without_credentials(url, address):
    assert called_address(url) == address
