"""The viewer path as a bare ASGI app: `/live/...` playlists, parts, segments and init segments
from a replica's own window, everything else handed to `fallback` (the FastAPI app of the
page, /api and /time).

Every request a player makes lands here, so it skips a framework's routing, validation and
response objects: measured on this machine, that is half again as many playlist answers per
second as the same routes in FastAPI (docs/benchmarks.md). Blocking playlist reloads and the
preload-hinted part wait on the replica's asyncio events (`ReplicaState.wait_until`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from ..ratelimit import HeldLimit
from . import http_policy
from .blocking import Readiness, parse_playlist_query
from .http_metrics import ReplicaMetrics
from .names import INIT_NAME, INIT_TAG_LEN, BadName, check_name, parse_media_name
from .replica import ReplicaState
from .signed_urls import Refused, check, parse, split_path
from .timeshift import Answer, Timeshift, asks_window
from .whole_answer import WholeAnswers

if TYPE_CHECKING:
    from ..vod.presentation import VodPresentation

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

READY_HEADER = "Orbitcast-Ready-At"  # on held answers: when what they waited for arrived here
READY_KEY = READY_HEADER.lower().encode()
# A web player on another origin that sends CMCD in headers (hls.js `cmcd.useHeaders`) asks
# first with a CORS preflight; the answer lets those headers through, for a day.
PREFLIGHT = {**http_policy.no_store(),
             "Access-Control-Allow-Headers": "Range, Content-Type, CMCD-Request, CMCD-Object, CMCD-Status, CMCD-Session",
             "Access-Control-Max-Age": "86400"}


def _headers(content_type: str, cache: dict[str, str]) -> tuple[tuple[bytes, bytes], ...]:
    return ((b"content-type", content_type.encode()),
            *((k.lower().encode(), v.encode()) for k, v in cache.items()))


class TooManyHeld(Exception):
    """This client already holds its share of blocking requests (429)."""


class _Held:
    """What a held GET needs to be answered from the replica's `apply` (whole_answer.py):
    its connection's `send`, what names its answer, and what was written once it was."""

    __slots__ = ("send", "key", "sent")

    def __init__(self, send: Send, key: tuple) -> None:
        self.send = send
        self.key = key
        self.sent: tuple[list, bytes] | None = None  # (headers, body) written whole


class LiveHTTP:
    def __init__(self, state: ReplicaState, fallback: ASGIApp, segment_duration: float,
                 viewer_keys: Mapping[str, str] | None = None, tokens_required: bool = False,
                 max_held_per_client: int = 0, timeshift: Timeshift | None = None,
                 metrics: ReplicaMetrics | None = None, vod: "VodPresentation | None" = None) -> None:
        self.state = state
        # `/vod/NAME/...`: recordings transcoded by `orbitcast transcode` (orbitcast/vod/presentation.py)
        self.vod = vod
        # requests by kind and status, their latency, CMCD viewers (http_metrics.py); None: not counted
        self.metrics = metrics
        # `?start=&end=` playlists and archived media (timeshift.py); None: the live window only
        self.timeshift = timeshift
        self.fallback = fallback
        # Signed viewer URLs (signed_urls.py): keys by id; without keys a token path is refused.
        self.viewer_keys = dict(viewer_keys or {})
        self.tokens_required = tokens_required
        # Blocking requests one client may hold at once (0: no limit; a CDN in front of the
        # origin is one client for many viewers).
        self.held_limit = HeldLimit(max_held_per_client) if max_held_per_client else None
        policy = state.policy
        self.hold_s = policy.blocking_timeout
        # Header sets are built once; each response gets a fresh list (Serve's direct ingress
        # appends to the list it is given).
        self.h_playlist = _headers(http_policy.PLAYLIST_TYPE, http_policy.live_playlist(segment_duration))
        self.h_blocking = _headers(http_policy.PLAYLIST_TYPE, http_policy.blocking_playlist(policy.target_duration))
        self.h_media = _headers(http_policy.SEGMENT_TYPE, http_policy.immutable())
        self.h_init = _headers(http_policy.INIT_TYPE, http_policy.immutable())
        self.h_init_current = _headers(http_policy.INIT_TYPE, http_policy.live_playlist(segment_duration))
        self.h_not_yet = _headers("text/plain; charset=utf-8", http_policy.not_yet())
        self.h_error = _headers("text/plain; charset=utf-8", http_policy.no_store())
        self.h_vod = _headers(http_policy.PLAYLIST_TYPE, http_policy.final_playlist())
        self.h_preflight = _headers("text/plain; charset=utf-8", PREFLIGHT)
        # Held answers released together are the same bytes: encoded once, one write each, from
        # the change that releases them. ORBITCAST_WHOLE_ANSWERS=0 sends them through ASGI (to compare).
        self.whole = WholeAnswers() if os.environ.get("ORBITCAST_WHOLE_ANSWERS", "1") != "0" else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith("/vod/") and self.vod is not None:
            await self._vod(scope, send)
            return
        if scope["type"] != "http" or not path.startswith("/live/"):
            if self.metrics is not None and scope["type"] == "http":
                await self._fallback_counted(scope, receive, send)
            else:
                await self.fallback(scope, receive, send)
            return
        started = time.perf_counter()
        head = scope["method"] == "HEAD"
        held: _Held | None = None
        try:
            if scope["method"] == "OPTIONS":
                status, headers, body = 204, self.h_preflight, b""
            elif scope["method"] not in ("GET", "HEAD"):
                status, headers, body = 405, self.h_error, b"method not allowed\n"
            else:
                path = self._admitted(path, scope)
                client = scope.get("client")
                query = scope.get("query_string", b"")
                held = _Held(send, (path, query)) if not head else None
                status, headers, body = await self._answer(path, query, client[0] if client else "", held)
        except Refused as err:
            status, headers, body = 403, self.h_error, f"forbidden: {err}\n".encode()
        except TooManyHeld:
            status, headers, body = 429, [*self.h_error, (b"retry-after", b"1")], b"too many held requests from this client\n"
        except BadName as err:
            status, headers, body = 400, self.h_error, f"{err}\n".encode()
        except Exception:  # noqa: BLE001 - never a stack trace to a client; the log keeps it
            log.exception("live request failed")
            status, headers, body = 500, self.h_error, b"internal error\n"
        if held is None or held.sent is None:  # not already written whole when it became ready
            if not (status == 200 and type(headers) is list and headers[-1][0] == READY_KEY
                    and held is not None and self._write_whole(held, headers, body)):
                await _respond(send, status, headers, body, head)
        if self.metrics is not None:  # after the answer is out: the viewer does not wait on it
            self.metrics.answered(path, status, time.perf_counter() - started, scope.get("headers", ()),
                                  scope.get("query_string", b""))

    async def _vod(self, scope: Scope, send: Send) -> None:
        headers: tuple | list
        try:
            if scope["method"] not in ("GET", "HEAD"):
                status, headers, body = 405, self.h_error, b"method not allowed\n"
            else:
                assert self.vod is not None
                answer = await self.vod.answer(scope["path"], scope.get("query_string", b"").decode("latin-1"))
                status, body = answer.status, answer.body
                headers = {"playlist": self.h_vod, "media": self.h_media, "init": self.h_init}.get(answer.kind, self.h_not_yet)
        except BadName as err:
            status, headers, body = 400, self.h_error, f"{err}\n".encode()
        except Exception:  # noqa: BLE001 - never a stack trace to a client; the log keeps it
            log.exception("vod request failed")
            status, headers, body = 500, self.h_error, b"internal error\n"
        await _respond(send, status, headers, body, scope["method"] == "HEAD")

    async def _fallback_counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.metrics is not None
        started = time.perf_counter()
        status = 500  # what a client sees of an app that fails before it answers

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.fallback(scope, receive, sending)
        finally:
            self.metrics.other(status, time.perf_counter() - started)

    def _admitted(self, path: str, scope: Scope) -> str:
        """The path without its token, if the request may have it; else `Refused`."""
        text, path = split_path(path)
        if text is None:
            if self.tokens_required:
                raise Refused("a signed URL is required (orbitcast token)")
            return path
        if not self.viewer_keys:
            raise Refused("signed URLs are not configured here")
        feed = path.split("/")[2] if path.count("/") >= 3 else ""
        # With HAProxy in front, uvicorn takes the client from its X-Forwarded-For (haproxy_front.py).
        client = scope.get("client")
        check(self.viewer_keys, parse(text), feed, time.time(), client[0] if client else None)
        return path

    def _write_whole(self, held: _Held, headers: list, body: bytes) -> bool:
        """A held answer in one write (whole_answer.py); False: it goes through ASGI."""
        if self.whole is not None and self.whole.write_whole(held.send, (*held.key, headers[-1][1]), 200, headers, body):
            held.sent = (headers, body)
            self.state.written_whole += 1
            return True
        return False

    async def _wait(self, client: str, feed: str, rendition: str, ready: Callable[[], Readiness],
                    answer: Callable[[], bool] | None = None) -> Readiness:
        """Hold this request until `ready` says so (or the hold ends), within the client's share;
        `answer` writes it from the change that makes it ready (`ReplicaState.wait_until`)."""
        if self.held_limit is None:
            return await self.state.wait_until(feed, rendition, ready, self.hold_s, answer)
        if not self.held_limit.acquire(client):
            raise TooManyHeld()
        try:
            return await self.state.wait_until(feed, rendition, ready, self.hold_s, answer)
        finally:
            self.held_limit.release(client)

    async def _answer(self, path: str, query: bytes, client: str = "", held: _Held | None = None) -> tuple[int, tuple | list, bytes]:
        parts = path.split("/")  # "", "live", feed, [rendition,] name
        params = parse_qsl(query.decode("latin-1"), keep_blank_values=True) if query else []
        if len(parts) == 4 and parts[3] == "master.m3u8":
            feed = check_name(parts[2], "feed")
            if asks_window(params):
                return self._shifted(await self.timeshift.master(feed, params)) if self.timeshift else self._no_archive()
            text = self.state.window.master(feed)
            return (200, self.h_playlist, text.encode()) if text is not None else self._not_found("feed")
        if len(parts) != 5:
            raise BadName("malformed live path")
        feed, rendition, name = check_name(parts[2], "feed"), check_name(parts[3], "rendition"), parts[4]
        if name == "index.m3u8":
            if asks_window(params):
                if self.timeshift is None:
                    return self._no_archive()
                return self._shifted(await self.timeshift.media(feed, rendition, params))
            return await self._media_playlist(feed, rendition, params, client, held)
        if name == INIT_NAME:
            return await self._init(feed, rendition, params)
        seq, index = parse_media_name(name)
        if index is None:
            return await self._segment(feed, rendition, seq, client)
        return await self._part(feed, rendition, seq, index, client, held)

    async def _segment(self, feed: str, rendition: str, seq: int, client: str) -> tuple:
        window = self.state.window
        data = window.segment_bytes(feed, rendition, seq)
        if data is None and window.segment_ready(feed, rendition, seq) is Readiness.WAIT:
            # listed by a replica a moment ahead of this one: held until it closes here too; or
            # closed short here (its last parts died with an encoder): held for its certified bytes
            waited = await self._wait(client, feed, rendition, lambda: window.segment_ready(feed, rendition, seq))
            data = window.segment_bytes(feed, rendition, seq)
            if data is None and waited is Readiness.WAIT:
                return self._unavailable("the segment did not arrive in time")
        if data is None and self.timeshift is not None:  # older than the window: the archive
            data = await self.timeshift.segment(feed, rendition, seq)
        return (200, self.h_media, data) if data is not None else self._not_found("segment")

    def _shifted(self, answer: Answer) -> tuple:
        if answer.status != 200:
            return answer.status, self.h_not_yet, answer.body
        return 200, self.h_vod if answer.final else self.h_playlist, answer.body

    def _no_archive(self) -> tuple:
        return 404, self.h_not_yet, b"time-shift is not served here\n"

    async def _media_playlist(self, feed: str, rendition: str, params: list[tuple[str, str]], client: str,
                              held: _Held | None = None) -> tuple:
        ask = parse_playlist_query(params)
        window = self.state.window
        headers: tuple | list = self.h_playlist
        if ask.msn is not None:
            msn, part = ask.msn, ask.part

            def answer() -> bool:
                assert held is not None
                body = window.media_bytes(feed, rendition, skip=ask.skip, skip_dateranges=ask.skip_dateranges)
                return body is not None and self._write_whole(held, [*self.h_blocking, self._ready_at(feed, rendition)], body)

            ready = await self._wait(client, feed, rendition, lambda: window.playlist_ready(feed, rendition, msn, part),
                                     answer if held is not None else None)
            if held is not None and held.sent is not None:
                return 200, *held.sent
            if ready is Readiness.TOO_FAR:
                return 400, self.h_error, b"_HLS_msn/_HLS_part too far ahead of the live edge\n"
            if ready is Readiness.WAIT:
                return self._unavailable("the requested part did not arrive in time")
            headers = [*self.h_blocking, self._ready_at(feed, rendition)]
        # rendered and encoded once per change, however many held requests it answers
        body = window.media_bytes(feed, rendition, skip=ask.skip, skip_dateranges=ask.skip_dateranges)
        return (200, headers, body) if body is not None else self._not_found("rendition")

    async def _init(self, feed: str, rendition: str, params: list[tuple[str, str]]) -> tuple:
        window = self.state.window
        data = window.init(feed, rendition)
        asked = dict(params).get("v")
        if asked is not None and asked != window.init_tag(feed, rendition) and self.timeshift is not None:
            # an earlier init, named by a time-shift playlist: from the archive
            if len(asked) != INIT_TAG_LEN or any(c not in "0123456789abcdef" for c in asked):
                return self._not_found("init segment version")
            data = await self.timeshift.init(feed, rendition, asked)
            return (200, self.h_init, data) if data is not None else self._not_found("init segment version")
        if data is None:
            return self._not_found("init segment")
        if asked is None:  # the bare name follows a transcoder that changed its parameters
            return 200, self.h_init_current, data
        if asked != window.init_tag(feed, rendition):
            return self._not_found("init segment version")
        return 200, self.h_init, data

    async def _part(self, feed: str, rendition: str, seq: int, index: int, client: str,
                    held: _Held | None = None) -> tuple:
        window = self.state.window
        data = window.part_bytes(feed, rendition, seq, index)
        if data is not None:
            return 200, self.h_media, data

        def answer() -> bool:
            assert held is not None
            data = window.part_bytes(feed, rendition, seq, index)
            return data is not None and self._write_whole(held, [*self.h_media, self._ready_at(feed, rendition)], data)

        # The preload-hinted part (or one just behind it): answer the moment it is cut.
        ready = await self._wait(client, feed, rendition, lambda: window.part_ready(feed, rendition, seq, index),
                                 answer if held is not None else None)
        if held is not None and held.sent is not None:
            return 200, *held.sent
        data = window.part_bytes(feed, rendition, seq, index) if ready is Readiness.READY else None
        if data is not None:
            return 200, [*self.h_media, self._ready_at(feed, rendition)], data
        return self._unavailable("the part did not arrive in time") if ready is Readiness.WAIT else self._not_found("part")

    def _ready_at(self, feed: str, rendition: str) -> tuple[bytes, bytes]:
        return READY_KEY, f"{self.state.arrived.get((feed, rendition), 0.0):.6f}".encode()

    def _not_found(self, what: str) -> tuple:
        return 404, self.h_not_yet, f"{what} not found\n".encode()

    def _unavailable(self, reason: str) -> tuple:
        return 503, [*self.h_error, (b"retry-after", b"1")], f"{reason}\n".encode()


async def _respond(send: Send, status: int, headers: Any, body: bytes, head: bool) -> None:
    out = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": b"" if head else body})
