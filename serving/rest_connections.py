"""The REST front's HTTP connections: how many at once, how long a client may take, and how a body is framed.

Each connection has a thread, so connections are capped (one more is answered
503 and closed) and no client may hold one for long without sending a request:
a connection idles between requests for at most the read timeout, and once a
request's first byte arrives its headers must end within the header timeout
and its body within the read timeout, however steadily it trickles in (a
timeout per read alone lets a client that sends a header line every few
seconds hold its thread for ever). A body is framed by exactly one decimal
Content-Length: anything else (a second one, a Transfer-Encoding, a length
that is not a number) is refused with 400 and the connection closed, so a proxy
in front cannot read the request differently (request smuggling).
"""
from __future__ import annotations

import contextlib
import http
import http.server
import io
import json
import logging
import re
import socket
import threading
import time

from serving.request_error import shortened

log = logging.getLogger(__name__)

_DECIMAL = re.compile(r"[0-9]+")


def json_bytes(answer: dict) -> bytes:
    return json.dumps(answer).encode()


class CappedHTTPServer(http.server.ThreadingHTTPServer):
    """A thread per connection, at most `max_connections` of them; one more is answered 503 and closed."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, max_connections: int) -> None:
        self.max_connections = max_connections
        self._connections = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler)

    def process_request(self, request: socket.socket, client_address: tuple) -> None:
        if self._connections.acquire(blocking=False):
            super().process_request(request, client_address)
            return
        body = json_bytes({"error": f"too many connections (at most {self.max_connections}); retry later"})
        try:
            request.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                request.recv(65536)  # what the client sent already: closing on unread bytes would reset the answer
            request.settimeout(1.0)
            request.sendall(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
        except OSError:
            pass  # the refused client went away first; there is nobody left to tell
        self.shutdown_request(request)

    def process_request_thread(self, request: socket.socket, client_address: tuple) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connections.release()

    def handle_error(self, request: socket.socket, client_address: tuple) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class _DeadlineReader(socket.SocketIO):
    """The connection's bytes, each read waiting at most the stall timeout and never past `deadline`."""

    def __init__(self, connection: socket.socket, stall_seconds: float) -> None:
        super().__init__(connection, "rb")
        self.deadline: float | None = None
        self._stall_seconds = stall_seconds

    def readinto(self, buffer: memoryview) -> int | None:
        wait = self._stall_seconds
        if self.deadline is not None:
            wait = min(wait, self.deadline - time.monotonic())
        if wait <= 0:
            raise TimeoutError("the client took too long to send its request")
        self._sock.settimeout(wait)
        try:
            return super().readinto(buffer)
        finally:
            self._sock.settimeout(self._stall_seconds)  # writes keep the whole timeout


class BoundedRequestHandler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 with the read and header timeouts and the body framing above; subclasses answer the methods."""

    protocol_version = "HTTP/1.1"
    timeout: float  # the read timeout: idling between requests, a whole request, and every write
    header_timeout: float
    max_body_bytes: int

    def setup(self) -> None:
        super().setup()
        self.rfile.close()
        self._reader = _DeadlineReader(self.connection, self.timeout)
        self.rfile = io.BufferedReader(self._reader)
        self._request_deadline = 0.0

    def handle_one_request(self) -> None:
        """Waits for a request as long as the read timeout, then times its headers and body from its first byte."""
        self._reader.deadline = None
        try:
            if not self.rfile.peek(1):
                self.close_connection = True
                return
        except TimeoutError:
            self.close_connection = True
            return
        started = time.monotonic()
        self._request_deadline = started + self.timeout
        self._reader.deadline = started + min(self.header_timeout, self.timeout)
        super().handle_one_request()

    def parse_request(self) -> bool:
        parsed = super().parse_request()
        self._reader.deadline = self._request_deadline
        return parsed

    def read_body(self) -> bytes | None:
        """The body its one Content-Length frames (none: empty), or None once the framing was refused."""
        if "Transfer-Encoding" in self.headers:
            return self._refuse(
                http.HTTPStatus.BAD_REQUEST, "Transfer-Encoding is not supported; send a Content-Length"
            )
        lengths = self.headers.get_all("Content-Length") or ["0"]
        if len(lengths) > 1:
            return self._refuse(
                http.HTTPStatus.BAD_REQUEST, f"a request has one Content-Length header, not {len(lengths)}"
            )
        text = lengths[0].strip()
        if not _DECIMAL.fullmatch(text):
            return self._refuse(
                http.HTTPStatus.BAD_REQUEST, f"Content-Length must be a number of bytes, not {shortened(text, 40)!r}"
            )
        digits = text.lstrip("0") or "0"
        if len(digits) > len(str(self.max_body_bytes)) or int(digits) > self.max_body_bytes:
            return self._refuse(
                http.HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"request body of {shortened(digits, 40)} bytes is larger than max ({self.max_body_bytes})",
            )
        return self.rfile.read(int(digits))

    def _refuse(self, status: http.HTTPStatus, message: str) -> None:
        """Answers a request whose body cannot be read, and closes: where the next request starts is unknown."""
        self.send_json(status, {"error": message})
        self.close_connection = True
        return None

    def send_json(self, status: http.HTTPStatus, answer: dict) -> None:
        self.send_bytes(status, json_bytes(answer), "application/json")

    def send_bytes(self, status: http.HTTPStatus, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), shortened(format % args))
