"""Held answers written whole: status line, headers and body encoded once, one write per waiter.

A part's arrival releases hundreds of held requests for the same playlist (or the same part),
and their answers are byte for byte the same. Through ASGI each one costs two `send`s: uvicorn
checks and joins the headers of each response (two regular expressions per header) and writes
headers and body with a system call each. Measured on this machine (500 held requests, one
uvicorn, nothing else running), that is most of the time from the part's arrival to the last
answer (docs/benchmarks.md). So when the server is uvicorn's httptools protocol, a held answer
is encoded once per change and written to each waiting connection in one call, and the
connection's request cycle is then closed as uvicorn's own `send` closes it (keep-alive, the
next pipelined request, the keep-alive timer).

Everywhere else (another server, HEAD, a connection closing or paused by flow control, uvicorn's
access log on, a cycle that already began its answer) `write_whole` declines and the answer goes
through ASGI as any other.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

try:  # uvicorn's fast protocol; without it every answer goes through ASGI
    from uvicorn.protocols.http.httptools_impl import STATUS_LINE, RequestResponseCycle
except ImportError:  # pragma: no cover - uvicorn comes with Ray Serve
    RequestResponseCycle = None  # type: ignore[assignment,misc]
    STATUS_LINE = {}

Header = tuple[bytes, bytes]


class WholeAnswers:
    """Encoded answers by what makes them, kept for the few renditions that change at once."""

    def __init__(self, keep: int = 64) -> None:
        self._keep = keep
        # key -> (body, default headers, encoded): body and default headers compared by
        # identity, so a key is only reused for the very objects it was made from
        self._encoded: OrderedDict[tuple, tuple[bytes, list, bytes]] = OrderedDict()

    def _encode(self, key: tuple, status: int, default: list[Header], headers: Sequence[Header], body: bytes) -> bytes:
        hit = self._encoded.get(key)
        if hit is not None and hit[0] is body and hit[1] is default:
            return hit[2]
        out = [STATUS_LINE[status]]
        for name, value in (*default, *headers, (b"content-length", str(len(body)).encode())):
            out.extend((name, b": ", value, b"\r\n"))
        out.append(b"\r\n")
        out.append(body)
        data = b"".join(out)
        self._encoded[key] = (body, default, data)
        self._encoded.move_to_end(key)
        while len(self._encoded) > self._keep:
            self._encoded.popitem(last=False)
        return data

    def write_whole(self, send: Callable[..., Any], key: tuple, status: int, headers: Sequence[Header],
                    body: bytes) -> bool:
        """Answer through uvicorn's connection in one write; False (nothing done) where the
        answer must go through ASGI. `key` names what the answer is made of (the same key,
        body and headers for every request it answers); header names are lower case, as the
        replica's are."""
        cycle = getattr(send, "__self__", None)
        if RequestResponseCycle is None or type(cycle) is not RequestResponseCycle:
            return False
        try:
            if (cycle.response_started or cycle.disconnected or cycle.flow.write_paused or cycle.access_log
                    or not cycle.keep_alive or cycle.scope["method"] != "GET" or cycle.on_response is None):
                return False
        except AttributeError:  # a uvicorn whose request cycle looks otherwise: through ASGI
            return False
        data = self._encode(key, status, cycle.default_headers, headers, body)
        # What uvicorn's `send` does for a start and a final body with a Content-Length.
        cycle.response_started = True
        cycle.waiting_for_100_continue = False
        cycle.chunked_encoding = False
        cycle.expected_content_length = 0
        cycle.transport.write(data)
        cycle.response_complete = True
        cycle.message_event.set()
        cycle.on_response()
        return True
