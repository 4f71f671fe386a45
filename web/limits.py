"""Request bodies are capped while they are read, chunked ones (no Content-Length) included.

Werkzeug refuses a declared Content-Length over `max_content_length` before reading anything, but
for a chunked body its max-limited stream stops reading at the limit and hands the view the first
`limit` bytes as if that were the whole body (Werkzeug 3.1). `CappedRequest` reads such a body
through `CappedStream` instead, which raises 413 the moment a byte past the limit arrives: the app
never holds more than the limit, and never mistakes a truncated body for a complete one.
"""

from __future__ import annotations

import io
import typing as t

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import cached_property
from werkzeug.wsgi import get_input_stream


class CappedStream(io.RawIOBase):
    """A body of unknown length, refused (413) as soon as it is longer than `limit_bytes`."""

    def __init__(self, stream: t.IO[bytes], limit_bytes: int) -> None:
        self._stream = stream
        self._limit = limit_bytes
        self._read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        # One byte past the limit is asked for, to tell "exactly the limit" from "too large".
        want = min(len(buffer), self._limit + 1 - self._read)
        data = self._stream.read(want)
        self._read += len(data)
        if self._read > self._limit:
            raise RequestEntityTooLarge(f"the request body is larger than {self._limit} bytes")
        buffer[: len(data)] = data
        return len(data)


class CappedRequest(Request):
    @cached_property
    def stream(self) -> t.IO[bytes]:
        limit = self.max_content_length
        if limit is not None and self.content_length is None and "wsgi.input_terminated" in self.environ:
            return t.cast(t.IO[bytes], io.BufferedReader(CappedStream(self.environ["wsgi.input"], limit)))
        return get_input_stream(self.environ, max_content_length=limit)
