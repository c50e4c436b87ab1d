"""HLS delivery logic: request names, the live window, playlists, HTTP caching policy."""
