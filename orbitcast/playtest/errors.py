"""Errors of the playback test facility.

    PlaytestError          a playtest cannot run as asked (bad option, nothing to play, no browser)
    └── PlaylistError      a playlist a player could not play from (also a ValueError)
"""

from __future__ import annotations


class PlaytestError(Exception):
    """The playtest cannot run as asked; the message says why, in one line."""


class PlaylistError(PlaytestError, ValueError):
    """A playlist that no player could play from."""
