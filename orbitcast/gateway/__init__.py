"""An embedded Threema Gateway (pure Python; never imports ray).

`core.Gateway` holds accounts, credits, per-recipient queues and blobs (via `pyarrow.fs`)
and answers Threema's status codes; `delivery` POSTs callbacks with their MAC, at least once,
a failed one retried on its own and, past its budget, a dead letter (`dead_letters`);
`http.build_gateway_app` exposes the HTTP API; `callback_app` is the recipient's endpoint;
`client` talks to any gateway (real, embedded over HTTP, in-process).
"""

from .blobstore import BlobStore
from .config import GatewayConfig, IdentityConfig
from .core import Gateway, MessageStatus
from .delivery import Poster, RequestsPoster
from .errors import BadRequest, GatewayRefusal, NoCredits, NotFound, TooLarge, Unauthorized, Unavailable

__all__ = [
    "BadRequest", "BlobStore", "Gateway", "GatewayConfig", "GatewayRefusal", "IdentityConfig",
    "MessageStatus", "NoCredits", "NotFound", "Poster", "RequestsPoster", "TooLarge", "Unauthorized", "Unavailable",
]
