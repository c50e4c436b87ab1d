"""A small, strict multipart/form-data reader for POST /upload_blob.

Only what Threema's upload needs: find the form fields by name, raw bytes, no temp files.
(Starlette's own form parser needs the optional `python-multipart` package.)
"""

from __future__ import annotations

import re

from .errors import BadRequest

_BOUNDARY_RE = re.compile(r'boundary=(?:"([^"]{1,200})"|([^\s;,]{1,200}))', re.IGNORECASE)
_NAME_RE = re.compile(rb'(?:^|;)\s*name="([^"]*)"|(?:^|;)\s*name=([^\s;]+)', re.IGNORECASE)


def boundary_of(content_type: str) -> bytes:
    if not content_type.lower().startswith("multipart/form-data"):
        raise BadRequest("expected multipart/form-data")
    match = _BOUNDARY_RE.search(content_type)
    if match is None:
        raise BadRequest("multipart boundary missing")
    return (match.group(1) or match.group(2)).encode("latin-1")


def parse_form_data(body: bytes, content_type: str) -> dict[str, bytes]:
    """Return {field name: raw content}; refuses malformed bodies with 400."""
    delimiter = b"--" + boundary_of(content_type)
    start = body.find(delimiter)
    if start < 0:
        raise BadRequest("multipart body has no boundary")
    fields: dict[str, bytes] = {}
    pos = start + len(delimiter)
    while True:
        marker = body[pos : pos + 2]
        if marker == b"--":  # closing delimiter
            return fields
        if marker != b"\r\n":
            raise BadRequest("malformed multipart delimiter")
        header_end = body.find(b"\r\n\r\n", pos + 2)
        if header_end < 0:
            raise BadRequest("malformed multipart headers")
        headers = body[pos + 2 : header_end]
        content_start = header_end + 4
        end = body.find(b"\r\n" + delimiter, content_start)
        if end < 0:
            raise BadRequest("multipart part not terminated")
        name = _field_name(headers)
        if name is not None and name not in fields:
            fields[name] = body[content_start:end]
        pos = end + 2 + len(delimiter)


def _field_name(headers: bytes) -> str | None:
    for line in headers.split(b"\r\n"):
        key, _, value = line.partition(b":")
        if key.strip().lower() == b"content-disposition":
            match = _NAME_RE.search(value)
            if match:
                return (match.group(1) or match.group(2)).decode("utf-8", "replace")
    return None
