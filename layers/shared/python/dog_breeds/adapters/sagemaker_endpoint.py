"""The one place that calls SageMaker Runtime ``InvokeEndpoint`` and reads what it answers.

Every failure leaves here as one of the project's errors (see ``dog_breeds.errors``); the
endpoint's own messages are logged by the caller at most, never returned to API consumers.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    ReadTimeoutError,
)
from botocore.exceptions import (
    ConnectionError as BotocoreConnectionError,
)

from dog_breeds.errors import (
    EndpointNotInServiceError,
    EndpointTimeoutError,
    EndpointUnavailableError,
    ModelFailedError,
    PayloadTooLargeError,
    ThrottledError,
    UndecodableImageError,
    UnsupportedMediaTypeError,
)
from dog_breeds.ports import Prediction

if TYPE_CHECKING:
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

# What the model container's 4xx answers mean for our caller (the container speaks for the image).
_UNDECODABLE = (UndecodableImageError, "The model could not decode this image; send a valid JPEG or PNG.")
_MODEL_CLIENT_ERRORS: dict[object, tuple[type[Exception], str]] = {
    400: _UNDECODABLE,
    413: (PayloadTooLargeError, "The image is too large for the model; send a smaller JPEG or PNG."),
    415: (UnsupportedMediaTypeError, "The model does not accept this image type; send JPEG or PNG."),
    422: _UNDECODABLE,
}

# Error codes SageMaker Runtime answers with, by what they mean for the caller.
_SERVICE_ERRORS: dict[str, type[Exception]] = {
    # Our requests are built and size-checked here, so the ValidationError that comes back is the
    # runtime's "Endpoint <name> of account <id> not found" (or not yet InService).
    "ValidationError": EndpointNotInServiceError,
    "ModelNotReadyException": EndpointUnavailableError,
    "ServiceUnavailable": EndpointUnavailableError,
    "ThrottlingException": ThrottledError,
    "InternalFailure": ModelFailedError,
    "InternalDependencyException": ModelFailedError,
}


class SageMakerEndpoint:
    """``ports.EndpointRuntime`` over a ``sagemaker-runtime`` client; one per execution environment."""

    def __init__(self, client: SageMakerRuntimeClient) -> None:
        self.client = client

    def predict(self, endpoint_name: str, image: bytes, content_type: str, top_k: int) -> list[Prediction]:
        return invoke_endpoint(self.client, endpoint_name, image, content_type, top_k)


def invoke_endpoint(
    client: SageMakerRuntimeClient, endpoint_name: str, image: bytes, content_type: str, top_k: int
) -> list[Prediction]:
    """Send ``image`` to the endpoint and return its predictions, best first.

    Returns a list of ``{"breed", "class_index", "probability"}`` dicts, at most ``top_k`` long.
    """
    try:
        response = client.invoke_endpoint(
            EndpointName=endpoint_name,
            Body=image,
            ContentType=content_type,
            Accept="application/json",
            CustomAttributes=f"top_k={top_k}",
        )
        body = response["Body"].read()
    except ReadTimeoutError as exc:
        raise EndpointTimeoutError(f"no answer from endpoint {endpoint_name}") from exc
    except (ConnectTimeoutError, BotocoreConnectionError) as exc:
        raise EndpointUnavailableError(f"cannot reach endpoint {endpoint_name}") from exc
    except ClientError as exc:
        raise _project_error(exc) from exc
    return _read_predictions(body, top_k)


def _project_error(exc: ClientError) -> Exception:
    code = exc.response.get("Error", {}).get("Code", "")
    if code == "ModelError":
        original_status = exc.response.get("OriginalStatusCode")
        error_class, message = _MODEL_CLIENT_ERRORS.get(
            original_status, (ModelFailedError, f"model answered with status {original_status}")
        )
        return error_class(message)
    error_class = _SERVICE_ERRORS.get(code, ModelFailedError)
    return error_class(f"SageMaker Runtime answered {code}")


def _read_predictions(body: bytes, top_k: int) -> list[Prediction]:
    try:
        predictions = json.loads(body)["predictions"]
        cleaned = [
            Prediction(
                breed=str(item["breed"]),
                class_index=int(item["class_index"]),
                probability=float(item["probability"]),
            )
            for item in predictions
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelFailedError("the endpoint's answer is not the predictions document") from exc
    cleaned.sort(key=lambda item: item["probability"], reverse=True)
    return cleaned[:top_k]
