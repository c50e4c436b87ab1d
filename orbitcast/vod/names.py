"""A recording's name and the feed name it is catalogued, sealed and certified under.

Live feed names are `[A-Za-z0-9][A-Za-z0-9_-]*` (the config and every URL check that), so a
feed name with a dot can never be a live feed's: `vod.NAME` is the recording NAME, whatever
live feeds exist now or later. The store and the ledger accept dots in names.
"""

from __future__ import annotations

from ..delivery.names import check_name

VOD_PREFIX = "vod."


def vod_feed(name: str) -> str:
    """The catalog/ledger feed of recording `name` (BadName when `name` is malformed)."""
    return VOD_PREFIX + check_name(name, "recording")
