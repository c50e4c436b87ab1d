"""orbitcast.clock: one time for every actor (no Ray here; actors/ wraps these objects).

Authority side: `ClockAuthority.from_config(cfg).start()`, then `answer(t1)` per exchange.
Client side: `SyncClient.from_config(cfg)`, `exchange(ask)` every `sync_interval_s`,
stamp with `now()`; `follower.Follower` does that in a thread, along a `transport.Route`
(UDP NTP or the actor call).
"""

from .authority import ClockAuthority
from .config import ClockConfig
from .disciplined import ClockState, ClockStatus, DisciplinedClock, MonotonicWall
from .filter import ClockFilter, Sample
from .iso import format_iso_ms, parse_iso
from .ntp_client import NTPError, UDPAsk
from .ntp_math import offset_delay
from .ntp_packet import NTPPacket, decode
from .ntp_server import NTPServer, ServerInfo
from .references import (NMEAReference, NTPReference, Reference, ReferenceState,
                         ReferenceStatus, SystemReference, build_reference)
from .sync_client import AuthorityReply, ExchangeResult, SyncClient

__all__ = [
    "AuthorityReply", "ClockAuthority", "ClockConfig", "ClockFilter", "ClockState",
    "ClockStatus", "DisciplinedClock", "ExchangeResult", "MonotonicWall", "NMEAReference",
    "NTPError", "NTPPacket", "NTPReference", "NTPServer", "Reference", "ReferenceState",
    "ReferenceStatus", "Sample", "ServerInfo", "SyncClient", "SystemReference", "UDPAsk",
    "build_reference", "decode", "format_iso_ms", "offset_delay", "parse_iso",
]
