"""Media: sources (PyAV demux), the live transcoder (decode once, encode a ladder), CMAF fMP4."""
