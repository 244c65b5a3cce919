"""What one `leather serve` process takes on at most, each a flag of `leather serve` with this default.

Free of TensorFlow and gRPC so that `leather --help` can show the defaults at
once; docs/serving.md ("Limits") explains each one.
"""
import dataclasses

MIB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class ServingLimits:
    """Bounds on request size, model work and connections, so no client can make the server grow without end."""

    # Largest gRPC message or REST body (TF Serving's own limit is 2 GiB).
    max_message_bytes: int = 64 * MIB
    # Elements (the leading dimension of each input, or tf.Examples) in one request.
    max_batch_size: int = 1024
    # Pixels of all the photos in one request, read from their headers (a GIF's every frame); the model
    # itself refuses a single photo over 50 megapixels (models.features.MAX_IMAGE_PIXELS).
    max_request_pixels: int = 100_000_000
    # Requests running the model at the same time; more wait in line.
    max_concurrent: int = 4
    # Requests waiting for the model; one more is answered RESOURCE_EXHAUSTED.
    max_queued: int = 32
    # Seconds a REST client may take to send a whole request (from its first byte to the end of its body),
    # and may idle between requests.
    rest_read_timeout: float = 30.0
    # Seconds from a REST request's first byte to the end of its headers.
    rest_header_timeout: float = 10.0
    # Open REST connections; one more is answered 503 and closed.
    rest_max_connections: int = 64

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if not getattr(self, field.name) > 0:
                raise ValueError(f"{field.name} must be positive, not {getattr(self, field.name)}")
