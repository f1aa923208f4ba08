"""The OJS error catalog as exception classes.

Every error the gateway can return is one of these. Each class carries the wire `code`, the HTTP
`status` and whether the client may retry; an instance carries the message and structured details.
The API layer renders them (`api/errors.py`); nothing here knows about HTTP frameworks.
"""

from __future__ import annotations

from typing import Any, ClassVar

DOCS_BASE = "https://openjobspec.org/spec/errors#"


class OjsError(Exception):
    """Base of every error the OJS API reports."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    retryable: ClassVar[bool] = False
    hint: ClassVar[str] = "Retry later; if the problem persists, report it with the request id."

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or (self.__doc__ or self.code).strip()
        self.details = {k: v for k, v in details.items() if v is not None}
        super().__init__(self.message)

    def headers(self) -> dict[str, str]:
        """Extra HTTP response headers this error carries (none by default)."""
        return {}

    def to_body(self, request_id: str) -> dict[str, Any]:
        """The `error` object of the OJS error response."""
        return {
            "code": self.code,
            "type": self.code,
            "message": self.message,
            "retryable": self.retryable,
            "details": self.details,
            "request_id": request_id,
            "hint": self.hint,
            "docs_url": DOCS_BASE + self.code,
        }


class InvalidRequestError(OjsError):
    """The request is malformed or a field has the wrong type or format."""

    code = "invalid_request"
    status = 400
    hint = "Check the request body against the OJS HTTP binding."


class InvalidPayloadError(OjsError):
    """The request body is not a valid JSON object."""

    code = "invalid_payload"
    status = 400
    hint = "Send a JSON object with Content-Type application/openjobspec+json."


class ValidationError(OjsError):
    """The request is well-formed but a value is semantically invalid."""

    code = "validation_error"
    status = 422
    hint = "Fix the field named in details.field."


class SchemaValidationError(OjsError):
    """The job's args do not conform to its registered schema.

    400 `schema_validation` as HTTP binding §16.3 names it (schema registry §7.3 writes 422
    `validation_error`; the binding is the authority for HTTP codes).
    """

    code = "schema_validation"
    status = 400
    hint = "Fix the args named in details.validation_errors, or GET /ojs/v1/schemas/{uri}."


class NotFoundError(OjsError):
    """The requested resource does not exist."""

    code = "not_found"
    status = 404
    hint = "Check the id; finished jobs are kept only for the configured retention."


class ConflictError(OjsError):
    """The operation is not allowed in the resource's current state."""

    code = "conflict"
    status = 409
    hint = "Read the resource to see its current state before retrying."


class DuplicateError(OjsError):
    """A job with the same id or unique key already exists."""

    code = "duplicate"
    status = 409
    hint = "Use a new id, or read the existing job named in details."


class PayloadTooLargeError(OjsError):
    """The request body exceeds the configured size limit."""

    code = "payload_too_large"
    status = 413
    hint = "Keep job payloads small; store large data elsewhere and pass a reference."


class BatchTooLargeError(OjsError):
    """The batch holds more jobs than one request may enqueue."""

    code = "batch_size_exceeded"
    status = 413
    hint = "Split the jobs into batches of at most details.max_batch_size."


class UnsupportedMediaTypeError(InvalidRequestError):
    """The request body has a content type the server does not accept.

    A 400 `invalid_request`, not a 415: HTTP binding §4.1 requires 400 for unsupported content
    types, and §16.3 allows only its standard codes (or `x_` ones).
    """

    hint = "Send Content-Type application/openjobspec+json or application/json."


class QueuePausedError(OjsError):
    """The queue is paused."""

    code = "queue_paused"
    status = 422
    retryable = True


class QueueFullError(OjsError):
    """The queue has reached its maximum depth."""

    code = "QUEUE_FULL"
    status = 429
    retryable = True
    hint = "Retry after the Retry-After header's seconds, or raise the queue's max_depth."

    def headers(self) -> dict[str, str]:
        # ojs-backpressure.md §7.2: depth and bound on every rejection.
        return {
            "X-OJS-Queue-Depth": str(self.details.get("depth", "")),
            "X-OJS-Queue-Bound": str(self.details.get("bound", "")),
        }


class RateLimitedError(OjsError):
    """A rate limit was exceeded."""

    code = "rate_limited"
    status = 429
    retryable = True


class UnsupportedError(OjsError):
    """The feature (or requested `OJS-Version`) is not supported by this server."""

    code = "unsupported"
    status = 422
    hint = "GET /ojs/manifest lists the spec version and capabilities this server supports."


class MethodNotAllowedError(InvalidRequestError):
    """The HTTP method is not allowed on this path.

    Status 405 with the standard `invalid_request` code: HTTP binding §16.3 allows only its
    vocabulary (or `x_` codes), and a wrong method is a malformed HTTP request.
    """

    status = 405
    hint = "See the OJS HTTP binding for the methods each path accepts."


class StorageUnavailableError(OjsError):
    """The job store (NATS JetStream) is unreachable or did not answer in time."""

    code = "backend_error"
    status = 503
    retryable = True


class ShuttingDownError(OjsError):
    """The gateway is shutting down and no longer hands out jobs."""

    code = "backend_error"
    status = 503
    retryable = True
    hint = "Retry against another gateway replica."


class InternalError(OjsError):
    """An unexpected error occurred."""

    code = "internal_error"
    status = 500
    retryable = True
