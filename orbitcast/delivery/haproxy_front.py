"""What orbitcast adds to the HAProxy configuration Ray Serve writes for its HAProxy ingress.

Ray Serve (`RAY_SERVE_ENABLE_HA_PROXY=1`) runs the HAProxy it bundles in front of the replicas'
own ports and rewrites its configuration whenever replicas come and go. Two things are added to
every configuration it writes, before HAProxy reads it:

- HAProxy's own cache, for GETs under /live/: every part and segment is immutable and every
  playlist says how long it may be kept (Cache-Control), so the bytes most viewers ask for
  are answered from HAProxy's shared memory, in C, like a CDN edge, and the Python replicas
  answer what is new: the first request for a part, blocking reloads, the held preload hints.
- Buffers large enough for a part or a segment in a few rounds (`tune.bufsize`).
- A GET that a replica took and then died with (killed while it held a blocking reload or a
  preload hint) is sent again to another replica (`retry-on ... empty-response`), as it is
  when the connection fails: the viewer sees its answer, a moment later, instead of an error
  that hls.js would wait out for a second before it asks again. GET and HEAD only: Serve
  leaves the retry on connection failures alone since a POST must not run twice, and so do we.
- When the viewer port listens on loopback, so do HAProxy's stats and Prometheus frontends
  (Serve binds those on every interface).
- A connect to a replica may take `CONNECT_TIMEOUT` (Serve: 5 s). HAProxy waits min(timeout
  connect, 1 s) before it retries a failed connect when one active server is left, which is
  the case the moment Serve's `on-error mark-down` takes a killed replica out of a pair: the
  request that marked it down stood still for a second (found with a player on the demo; every
  Delivery kill cost it). A replica's connect is a kernel handshake on the local network, and
  one that fails is better tried on another replica; the queue keeps Serve's timeout.
"""

from __future__ import annotations

import re

CACHE_NAME = "orbitcast_live"
MARK = "# orbitcast: "

_FRONTEND_BIND = re.compile(r"^frontend http_frontend\n\s+bind (\S+):(\d+)", re.MULTILINE)
_OTHER_BIND = re.compile(r"^(\s*bind\s+)(\*)?:(\d+)", re.MULTILINE)
# The first routing rule of the frontend (`default_backend` alone while no app is deployed).
_FIRST_ROUTE = re.compile(r"^(\s*)(?:use_backend|default_backend) ", re.MULTILINE)
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
_BUFSIZE = re.compile(r"^(\s*tune\.bufsize\s+)(\d+)", re.MULTILINE)
# Serve's default (RAY_SERVE_HAPROXY_RETRY_ON unset); a policy set by hand is left as it is.
_RETRY_ON = re.compile(r"^(\s*retry-on\s+)conn-failure[ \t]*$", re.MULTILINE)
RETRY_ON = "conn-failure empty-response"
# HAProxy moves a response through buffers of this size: a 300 KB segment from the cache takes
# 20 rounds at Serve's 16 KB and two at 256 KB, which more than doubled segments/s here
# (docs/benchmarks.md). Buffers are taken per active transfer and given back when empty.
BUFSIZE = 256 * 1024
CONNECT_TIMEOUT = "100ms"
# `timeout connect 5s` in Serve's defaults (seconds, as Serve writes it, or a bare number of ms)
_CONNECT = re.compile(r"^(\s*)timeout\s+connect\s+(\d+(?:ms|s)?)[ \t]*$", re.MULTILINE)
_QUEUE = re.compile(r"^\s*timeout\s+queue\s", re.MULTILINE)


class FrontConfigError(ValueError):
    """The configuration does not look like the one Ray Serve writes."""


def cache_section(total_mb: int, max_object_bytes: int, max_age_s: int) -> str:
    return (
        f"{MARK}immutable parts and segments, and playlists as long as they say, from memory\n"
        f"cache {CACHE_NAME}\n"
        f"    total-max-size {total_mb}\n"
        f"    max-object-size {max_object_bytes}\n"
        f"    max-age {max_age_s}\n"
    )


def cache_rules(indent: str) -> str:
    return (
        f"{indent}{MARK}only a GET or HEAD is sent again after its replica died with it\n"
        f"{indent}http-request disable-l7-retry if !METH_GET\n"
        f"{indent}{MARK}live media and playlists through the cache (Cache-Control decides)\n"
        f"{indent}acl orbitcast_live path_beg /live/\n"
        f"{indent}http-request set-var(txn.orbitcast_live) bool(true) if orbitcast_live METH_GET\n"
        # The viewer's own address, set (never appended to what a client sent): signed URLs
        # may be bound to it (signed_urls.py), and uvicorn reads it as the request's client.
        f"{indent}http-request set-header X-Forwarded-For %[src] if orbitcast_live\n"
        f"{indent}http-request cache-use {CACHE_NAME} if orbitcast_live METH_GET\n"
        f"{indent}http-response cache-store {CACHE_NAME} if {{ var(txn.orbitcast_live) -m bool }}\n"
    )


def front_config(text: str, total_mb: int = 256, max_object_bytes: int = 16 * 1024 * 1024,
                 max_age_s: int = 60, bufsize: int = BUFSIZE) -> str:
    """Serve's configuration with orbitcast's additions; applying it twice changes nothing."""
    if MARK in text:
        return text
    bind = _FRONTEND_BIND.search(text)
    if bind is None:
        raise FrontConfigError("no `frontend http_frontend` with a bind line")
    first_use = _FIRST_ROUTE.search(text, bind.end())
    if first_use is None:
        raise FrontConfigError("the http frontend routes to no backend")
    text = text[:first_use.start()] + cache_rules(first_use.group(1)) + text[first_use.start():]
    if bind.group(1) in LOOPBACK:
        host = bind.group(1)
        text = _OTHER_BIND.sub(lambda m: f"{m.group(1)}{host}:{m.group(3)}", text)
    text = _RETRY_ON.sub(lambda m: f"{m.group(1)}{RETRY_ON}", text, count=1)
    text = _BUFSIZE.sub(lambda m: m.group(0) if int(m.group(2)) >= bufsize else f"{m.group(1)}{bufsize}", text, count=1)
    defaults = text.find("\ndefaults")
    if defaults < 0:
        raise FrontConfigError("no defaults section")
    text = _short_connect(text)
    return text[:defaults + 1] + cache_section(total_mb, max_object_bytes, max_age_s) + text[defaults + 1:]


def _short_connect(text: str) -> str:
    """Serve's connect timeout as CONNECT_TIMEOUT; the queue timeout, which HAProxy takes from
    the connect timeout when it has none, stays what it was."""
    found = _CONNECT.search(text)
    if found is None:
        return text
    indent, before = found.group(1), found.group(2)
    line = f"{indent}timeout connect {CONNECT_TIMEOUT}"
    if _QUEUE.search(text) is None:
        line += f"\n{indent}timeout queue {before}"
    return text[:found.start()] + line + text[found.end():]
