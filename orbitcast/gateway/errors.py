"""Refusals the gateway answers with an HTTP status, as Threema's gateway does.

    GatewayRefusal (status, short reason)
    ├── BadRequest      400  bad recipient / nonce / box, empty blob, unsupported mode
    ├── Unauthorized    401  unknown API identity or wrong secret (never says which)
    ├── NoCredits       402
    ├── NotFound        404  unknown identity, blob, lookup
    ├── TooLarge        413  box over 4000 bytes, blob over the limit
    └── Unavailable     503  recipient queue full (backpressure instead of unbounded memory)
"""

from __future__ import annotations


class GatewayRefusal(Exception):
    status: int = 500
    code: str = "error"

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason or self.code)
        self.reason = reason or self.code


class BadRequest(GatewayRefusal):
    status = 400
    code = "bad_request"


class Unauthorized(GatewayRefusal):
    status = 401
    code = "unauthorized"


class NoCredits(GatewayRefusal):
    status = 402
    code = "no_credits"


class NotFound(GatewayRefusal):
    status = 404
    code = "not_found"


class TooLarge(GatewayRefusal):
    status = 413
    code = "too_large"


class Unavailable(GatewayRefusal):
    status = 503
    code = "unavailable"
