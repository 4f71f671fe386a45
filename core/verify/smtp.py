"""A minimal SMTP client for probing recipients: asyncio streams, a timeout on every read, and a hard
refusal to write anything that is not one clean command line.

Nothing here decides what a reply means (see replies.py) or which host to use (see probe.py).
"""

from __future__ import annotations

import asyncio
import re
import ssl
from dataclasses import dataclass

from core.verify.replies import Reply

_MAX_REPLY_LINES = 100
# C0 controls (CR, LF, NUL...), DEL, and the Unicode line separators some stacks also break on.
_UNSAFE = re.compile("[\x00-\x1f\x7f\u0085\u2028\u2029]")
_MAX_TEXT_IN_EVIDENCE = 200


class SmtpError(Exception):
    """The session cannot go on (connection lost, garbage reply)."""


class SmtpTimeout(SmtpError):
    pass


class UnsafeCommand(ValueError):
    """A command would carry CR, LF or another control character onto the wire: never sent."""


@dataclass(frozen=True)
class SmtpStep:
    """One exchange, kept as evidence: which step, which host, what the server said."""

    step: str  # connect, banner, ehlo, helo, starttls, mail, rcpt_probe, rcpt, quit
    host: str
    code: int | None  # None when there was no reply (refused, timeout)
    enhanced: str | None
    text: str
    attempt: int = 1

    def to_dict(self) -> dict[str, object]:
        return {
            "step": self.step,
            "host": self.host,
            "code": self.code,
            "enhanced": self.enhanced,
            "text": self.text,
            "attempt": self.attempt,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> SmtpStep:
        code = data.get("code")
        enhanced = data.get("enhanced")
        return cls(
            step=str(data["step"]),
            host=str(data.get("host", "")),
            code=int(code) if isinstance(code, int) else None,
            enhanced=str(enhanced) if enhanced is not None else None,
            text=str(data.get("text", "")),
            attempt=int(data.get("attempt", 1)),  # type: ignore[call-overload]
        )

    @classmethod
    def of(cls, step: str, host: str, reply: Reply, attempt: int) -> SmtpStep:
        return cls(step, host, reply.code, reply.enhanced, reply.text[:_MAX_TEXT_IN_EVIDENCE], attempt)


def check_wire_safe(line: str) -> None:
    """Raise UnsafeCommand unless `line` is printable text (UTF-8 allowed for SMTPUTF8)."""
    bad = _UNSAFE.search(line)
    if bad is not None:
        raise UnsafeCommand(f"refusing to send a command containing U+{ord(bad.group()):04X}")


class SmtpSession:
    """One open SMTP connection. Use `connect`, then commands, then `close` (always)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        host: str,
        command_timeout_s: float,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.host = host
        self._timeout = command_timeout_s
        self.extensions: set[str] = set()

    @classmethod
    async def connect(
        cls, host: str, address: str, port: int, *, connect_timeout_s: float, command_timeout_s: float
    ) -> tuple[SmtpSession, Reply]:
        """Open a TCP connection and read the banner, both within `connect_timeout_s`.

        Raises OSError (refused, unreachable), SmtpTimeout or SmtpError.
        """
        try:
            async with asyncio.timeout(connect_timeout_s):
                reader, writer = await asyncio.open_connection(address, port)
        except TimeoutError as exc:
            raise SmtpTimeout(f"connect to {address}:{port} timed out") from exc
        session = cls(reader, writer, host, command_timeout_s)
        try:
            banner = await session._read_reply(connect_timeout_s)
        except BaseException:
            session.abort()
            raise
        return session, banner

    async def _read_reply(self, timeout_s: float | None = None) -> Reply:
        codes: set[int] = set()
        texts: list[str] = []
        try:
            async with asyncio.timeout(timeout_s if timeout_s is not None else self._timeout):
                for _ in range(_MAX_REPLY_LINES):
                    raw = await self._reader.readline()
                    if not raw:
                        raise SmtpError("connection closed by server")
                    line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                    if len(line) < 3 or not line[:3].isdigit():
                        raise SmtpError(f"not an SMTP reply: {line[:80]!r}")
                    codes.add(int(line[:3]))
                    texts.append(line[4:])
                    if len(line) == 3 or line[3] != "-":
                        break
                else:
                    raise SmtpError("reply too long")
        except TimeoutError as exc:
            raise SmtpTimeout("timed out waiting for the server's reply") from exc
        except (ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
            raise SmtpError(f"connection lost: {exc}") from exc
        if len(codes) != 1:
            raise SmtpError("inconsistent reply codes in a multi-line reply")
        return Reply(codes.pop(), " / ".join(texts))

    async def command(self, line: str) -> Reply:
        check_wire_safe(line)  # before anything touches the socket
        try:
            self._writer.write(line.encode("utf-8") + b"\r\n")
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            raise SmtpError(f"connection lost: {exc}") from exc
        return await self._read_reply()

    async def ehlo(self, name: str) -> Reply:
        reply = await self.command(f"EHLO {name}")
        if reply.is_positive:
            # First line is the server's greeting; the rest are extension keywords.
            self.extensions = {part.split(" ", 1)[0].upper() for part in reply.text.split(" / ")[1:]}
        return reply

    async def starttls(self, *, verify_cert: bool) -> Reply:
        reply = await self.command("STARTTLS")
        if not reply.is_positive:
            return reply
        context = ssl.create_default_context()
        if not verify_cert:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        try:
            async with asyncio.timeout(self._timeout):
                await self._writer.start_tls(context, server_hostname=self.host)
        except TimeoutError as exc:
            raise SmtpTimeout("TLS handshake timed out") from exc
        except (ssl.SSLError, ConnectionError, OSError) as exc:
            raise SmtpError(f"TLS handshake failed: {exc}") from exc
        self.extensions = set()  # RFC 3207: forget what was said before TLS; EHLO again
        return reply

    async def quit(self) -> Reply | None:
        """Say goodbye politely but never let a slow goodbye hold the caller."""
        try:
            return await self.command("QUIT")
        except (SmtpError, UnsafeCommand):
            return None
        finally:
            await self.close()

    def abort(self) -> None:
        self._writer.transport.abort()

    async def close(self) -> None:
        self._writer.close()
        try:
            async with asyncio.timeout(1.0):
                await self._writer.wait_closed()
        except (TimeoutError, ConnectionError, OSError, ssl.SSLError):
            self.abort()
