"""How the serving code refuses a request, whatever transport carries it.

A refusal carries the gRPC status code TF Serving would answer: the gRPC host
passes it on as it is, and the REST front maps it to TF Serving's HTTP status,
so each refusal is decided once for both.
"""
import grpc


class RequestError(Exception):
    """A request the server refuses, with the status code TF Serving would answer and a one-line reason."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
