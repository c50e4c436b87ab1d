"""multipart/form-data for POST /upload_blob, read with `python-multipart` (the parser Starlette
uses), strictly and in memory.

Threema's upload needs one field (`blob`); only the fields asked for are kept, as raw bytes, so
a body costs the caller its wanted fields and nothing more: no temp files, no copy of the
whole body. The first occurrence of a name wins. Every way a body can be wrong (not multipart,
no usable boundary, broken delimiters or headers, cut short) is a `BadRequest` (400) with a
short reason.
"""

from __future__ import annotations

from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

from .errors import BadRequest

MAX_BOUNDARY = 70  # RFC 2046 5.1.1: 1 to 70 characters


def boundary_of(content_type: str) -> bytes:
    """The boundary a multipart/form-data Content-Type names; 400 when it names none."""
    try:
        mime, options = parse_options_header(content_type)
    except (UnicodeError, ValueError):  # not latin-1 text: no header a client meant
        raise BadRequest("expected multipart/form-data") from None
    if mime != b"multipart/form-data":
        raise BadRequest("expected multipart/form-data")
    boundary = options.get(b"boundary", b"")
    if not boundary:
        raise BadRequest("multipart boundary missing")
    if len(boundary) > MAX_BOUNDARY:
        raise BadRequest("multipart boundary too long")
    return boundary


class FormReader:
    """One body, fed in chunks as they arrive (`feed`), then `finish()`: {name: content} of the
    wanted fields (every field when `wanted` is None)."""

    def __init__(self, content_type: str, wanted: set[str] | None = None) -> None:
        self._wanted = wanted
        self.fields: dict[str, bytes] = {}
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._name: str | None = None  # the current part's field name, when it is kept
        self._data = bytearray()
        self._ended = False
        self._parser = MultipartParser(boundary_of(content_type), {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self._header_name.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._header_value.extend(d[s:e]),
            "on_header_end": self._header_end,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        })

    def feed(self, chunk: bytes) -> None:
        if self._ended:
            return  # an epilogue after the closing delimiter is ignored (RFC 2046)
        try:
            self._parser.write(chunk)
        except FormParserError as exc:
            raise BadRequest("malformed multipart body") from exc

    def finish(self) -> dict[str, bytes]:
        if not self._ended:
            raise BadRequest("multipart body not terminated")
        return self.fields

    # -- the parser's callbacks ------------------------------------------------------------
    def _part_begin(self) -> None:
        self._name = None
        self._data = bytearray()

    def _header_end(self) -> None:
        if bytes(self._header_name).strip().lower() == b"content-disposition":
            _, options = parse_options_header(bytes(self._header_value).decode("latin-1"))
            name = options.get(b"name")
            if name is not None:
                text = name.decode("utf-8", "replace")
                if (self._wanted is None or text in self._wanted) and text not in self.fields:
                    self._name = text
        self._header_name.clear()
        self._header_value.clear()

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._name is not None:
            self._data += data[start:end]

    def _part_end(self) -> None:
        if self._name is not None and self._name not in self.fields:
            self.fields[self._name] = bytes(self._data)
        self._name = None
        self._data = bytearray()

    def _end(self) -> None:
        self._ended = True


def parse_form_data(body: bytes, content_type: str, wanted: set[str] | None = None) -> dict[str, bytes]:
    """A whole body at once: {field name: raw content}; 400 for a malformed one."""
    reader = FormReader(content_type, wanted)
    reader.feed(body)
    return reader.finish()
