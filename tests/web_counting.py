"""A WSGI wrapper that counts the request-body bytes the app read before it answered.

The count goes out in the response header `X-Test-Body-Bytes-Read`, so a test can read it from a
server in another process (gunicorn) as well as from one in its own.
"""

from __future__ import annotations

import io
from typing import Any

COUNT_HEADER = "X-Test-Body-Bytes-Read"


class _CountingInput(io.RawIOBase):
    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.count += len(data)
        return data

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readline(self, size: int = -1) -> bytes:
        data = self._stream.readline(size)
        self.count += len(data)
        return data


def counting(app):
    def wrapped(environ, start_response):
        counter = _CountingInput(environ["wsgi.input"])
        environ["wsgi.input"] = counter

        def start(status, headers, exc_info=None):
            return start_response(status, [*headers, (COUNT_HEADER, str(counter.count))], exc_info)

        return app(environ, start)

    return wrapped


def counting_app():
    """For gunicorn: the production app from TRIBUTARY_* settings, wrapped."""
    from web.app import create_app

    app = create_app()
    app.wsgi_app = counting(app.wsgi_app)
    return app
