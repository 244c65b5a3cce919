"""How the serving code refuses a request, whatever transport carries it.

A refusal carries the gRPC status code TF Serving would answer: the gRPC host
passes it on as it is, and the REST front maps it to TF Serving's HTTP status,
so each refusal is decided once for both. Refusals echo what the client sent
(model, signature and label names, paths); a client can send names of 60 kB, so
what is echoed is cut to a few hundred characters: an answer past gRPC's
metadata limit would reach the client as RESOURCE_EXHAUSTED, and a log of such
answers grows by megabytes a second.
"""
import grpc

MAX_MESSAGE_CHARS = 500
"""Longest refusal message; a longer one keeps its start and end around a note of what was cut."""


def shortened(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """`text` if it has at most `limit` characters, else its start and end around how many were cut, in `limit`."""
    if len(text) <= limit:
        return text
    kept = max(limit - len(f"...[{len(text)} characters cut]..."), 0)
    head, tail = text[: kept - kept // 3], text[len(text) - kept // 3 :] if kept // 3 else ""
    return f"{head}...[{len(text) - len(head) - len(tail)} characters cut]...{tail}"


class RequestError(Exception):
    """A request the server refuses, with the status code TF Serving would answer and a one-line reason."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        message = shortened(message)
        super().__init__(message)
        self.code = code
        self.message = message
