"""The project's error classes and the one table that maps them to HTTP answers.

Logic and adapters raise these; only the handler turns them into responses, through
``http_error``. A client error carries a message written by this project that says what
was wrong and what is accepted; a server error answers with the fixed message of its row,
so no exception text, endpoint message or stack trace ever reaches a caller.
"""

from __future__ import annotations

from dataclasses import dataclass


class PredictionError(Exception):
    """Base class: ``message`` is ours and safe to show to the caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MalformedRequestError(PredictionError):
    """The request is not shaped as the API accepts (bad JSON, bad field, bad top_k)."""


class PayloadTooLargeError(PredictionError):
    """The image is larger than the configured limit."""


class UnsupportedMediaTypeError(PredictionError):
    """The Content-Type is not one the API accepts."""


class UndecodableImageError(PredictionError):
    """The bytes are not a JPEG or PNG image the model can decode."""


class ThrottledError(PredictionError):
    """The endpoint refused the call because of its request rate."""


class ModelFailedError(PredictionError):
    """The endpoint answered with a server error or with an answer we cannot read."""


class EndpointUnavailableError(PredictionError):
    """The endpoint does not exist, is not InService, or cannot be reached."""


class EndpointNotInServiceError(EndpointUnavailableError):
    """SageMaker Runtime answered ValidationError: no endpoint of that name is InService (absent, or still Creating)."""


class EndpointTimeoutError(PredictionError):
    """The endpoint did not answer within the read timeout (after the bounded retries)."""


class EndpointStartingError(EndpointUnavailableError):
    """A serverless endpoint did not answer within the read timeout: a cold start is under way (SageMaker gives it
    up to 3 minutes), and a retry after it is answered by the started container."""


@dataclass(frozen=True)
class ErrorRow:
    status: int
    code: str
    fixed_message: str | None  # None: the error's own (client-facing) message is shown
    retry_after_seconds: int | None = None  # sent as Retry-After (RFC 9110, 10.2.3): when a retry may succeed


ERROR_TABLE: dict[type[Exception], ErrorRow] = {
    MalformedRequestError: ErrorRow(400, "MalformedRequest", None),
    PayloadTooLargeError: ErrorRow(413, "PayloadTooLarge", None),
    UnsupportedMediaTypeError: ErrorRow(415, "UnsupportedMediaType", None),
    UndecodableImageError: ErrorRow(422, "UndecodableImage", None),
    # A serverless endpoint past its MaxConcurrency, or SageMaker's own rate limit: a second is a concurrent
    # request's typical duration here, the earliest a slot frees (clients should still back off exponentially)
    ThrottledError: ErrorRow(429, "Throttled", "Too many requests; retry with exponential backoff.", 1),
    ModelFailedError: ErrorRow(502, "ModelError", "The model failed to answer this request."),
    # Before its base class (the first row that matches is the answer). 20: settings.SERVERLESS_RETRY_AFTER_SECONDS
    # (errors.py imports nothing; tests/unit holds the two equal)
    EndpointStartingError: ErrorRow(
        503, "EndpointStarting", "The model endpoint is starting after an idle period; retry after 20 s.", 20
    ),
    # Not InService, or no instance answers: a failed container is replaced in 17-31 s here (make reliability's fault
    # rows), so half a minute is when a retry may succeed. 504 gets none: RFC 9110 gives Retry-After a meaning for
    # 503 and 429 (and redirects) only; a timeout's retry is the client's exponential backoff (docs/api.md)
    EndpointUnavailableError: ErrorRow(
        503, "EndpointUnavailable", "The model endpoint is not available; retry after 30 s.", 30
    ),
    EndpointTimeoutError: ErrorRow(504, "EndpointTimeout", "The model endpoint did not answer in time."),
}
UNEXPECTED_ERROR = ErrorRow(500, "InternalError", "An internal error occurred.")


@dataclass(frozen=True)
class HttpError:
    status: int
    code: str
    message: str
    retry_after_seconds: int | None = None

    def body(self, request_id: str) -> dict:
        return {"error": {"code": self.code, "message": self.message}, "request_id": request_id}


# The longest message an answer carries: whatever a client sent, its error stays a few hundred bytes (an echo of a
# multi-megabyte request would push the answer past Lambda's 6 MB response limit and turn a 4xx into a 5xx)
MAX_MESSAGE_CHARS = 500


def excerpt(value: object, limit: int = 40) -> str:
    """A client's value as an error message may quote it: its repr, at most ``limit`` characters of it."""
    text = str(value)
    shown = repr(text[:limit])
    return shown if len(text) <= limit else f"{shown}... ({len(text)} characters)"


def http_error(exc: BaseException) -> HttpError:
    """Return the HTTP status, stable code and safe message for any exception."""
    row = next((row for cls, row in ERROR_TABLE.items() if isinstance(exc, cls)), UNEXPECTED_ERROR)
    # Rows without a fixed message belong to PredictionError subclasses, whose message is ours.
    if row.fixed_message is None and isinstance(exc, PredictionError):
        message = exc.message if len(exc.message) <= MAX_MESSAGE_CHARS else exc.message[: MAX_MESSAGE_CHARS - 3] + "..."
        return HttpError(row.status, row.code, message, row.retry_after_seconds)
    message = row.fixed_message or str(UNEXPECTED_ERROR.fixed_message)
    return HttpError(row.status, row.code, message, row.retry_after_seconds)


# --- control-plane errors: raised to the caller (Step Functions or a CLI), whose Catch names them ---


class ControlPlaneError(Exception):
    """Base class of the control-plane functions' failures; the message says what to do."""


class InvalidEventError(ControlPlaneError):
    """The event is not shaped as the function accepts; the message names the fields."""


class TrainingNotCompleteError(ControlPlaneError):
    """A deploy was asked for from a training job that has not Completed."""


class EndpointBusyError(ControlPlaneError):
    """The endpoint is Creating or Updating; retry when it is InService."""


class AwsRequestRefusedError(ControlPlaneError):
    """AWS refused a control-plane request; the message carries AWS's own reason for the operator."""


class ResourceExistsError(AwsRequestRefusedError):
    """AWS refused to create a resource because one of that name exists (SageMaker's ResourceInUse)."""


class ModelIntegrityError(ControlPlaneError):
    """A model's bytes are not those its registry entry or its content address records."""


class AwsUnreachableError(ControlPlaneError):
    """AWS could not be reached (network, endpoint URL); nothing was changed."""
