"""Signed viewer URLs: only invited viewers get in (CloudFront's signed URLs and OvenMediaEngine's
SignedPolicy are the anchors).

A token is carried in the path, ahead of the feed: `/live/t/<token>/<feed>/master.m3u8`. Every
URI in orbitcast's playlists is relative (child playlists, rendition reports, init, segments,
parts, preload hints), so a player resolves each of them under the same `/live/t/<token>/`
and the token travels into every request by itself: one signed master URL plays, and the
playlists stay rendered once for all viewers.

    token = <key id> "~" <expiry, unix seconds> "~" <client IP or "-"> "~" <signature>
    signature = base64url(HMAC-SHA256(key, "orbitcast-v1\n/live/<feed>/\n<expiry>\n<ip or ->"))

It signs the path prefix of one feed, an expiry and, optionally, the client's address. Keys
have ids so that two can be active while one replaces the other: sign with the newest, accept
any that is configured.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

PREFIX = "/live/t/"
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_EXPIRY = re.compile(r"[0-9]{1,12}")
_IP = re.compile(r"[0-9A-Fa-f:.]{1,45}|-")
_SIGNATURE = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes, base64url without padding


class Refused(ValueError):
    """The request carries no valid token for what it asks; str is the short reason (403)."""


@dataclass(frozen=True)
class Token:
    key_id: str
    expires: int
    ip: str | None
    signature: str

    def __str__(self) -> str:
        # "~": unreserved in a URL path and in none of the fields (an address has dots)
        return f"{self.key_id}~{self.expires}~{self.ip or '-'}~{self.signature}"


def _mac(key: str, feed: str, expires: int, ip: str | None) -> str:
    message = f"orbitcast-v1\n/live/{feed}/\n{expires}\n{ip or '-'}".encode()
    digest = hmac.new(key.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign(keys: Mapping[str, str], key_id: str, feed: str, expires: int, ip: str | None = None) -> Token:
    if key_id not in keys:
        raise KeyError(f"no viewer key {key_id!r}")
    return Token(key_id, int(expires), ip, _mac(keys[key_id], feed, int(expires), ip))


def parse(text: str) -> Token:
    fields = text.split("~")
    if len(fields) != 4:
        raise Refused("malformed token")
    key_id, expires, ip, signature = fields
    if not (_KEY_ID.fullmatch(key_id) and _EXPIRY.fullmatch(expires) and _IP.fullmatch(ip)
            and _SIGNATURE.fullmatch(signature)):
        raise Refused("malformed token")
    return Token(key_id, int(expires), None if ip == "-" else ip, signature)


def check(keys: Mapping[str, str], token: Token, feed: str, now: float, client_ip: str | None) -> None:
    """Raise `Refused` unless `token` admits a request for `feed` now, from `client_ip`."""
    key = keys.get(token.key_id)
    if key is None:
        raise Refused("unknown key")
    # The signature first: an expiry or address an attacker wrote must not be reported back.
    if not hmac.compare_digest(_mac(key, feed, token.expires, token.ip), token.signature):
        raise Refused("bad signature for this feed")
    if now >= token.expires:
        raise Refused("token expired")
    if token.ip is not None and token.ip != client_ip:
        raise Refused("token is for another client address")


def split_path(path: str) -> tuple[str | None, str]:
    """(token text or None, the path without it): `/live/t/T/iss/...` -> ("T", "/live/iss/...")."""
    if not path.startswith(PREFIX):
        return None, path
    token, sep, rest = path[len(PREFIX):].partition("/")
    if not sep or not token:
        raise Refused("malformed token")
    return token, "/live/" + rest
