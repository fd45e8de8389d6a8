"""A local server that speaks the SageMaker Runtime API on loopback.

``POST /endpoints/{name}/invocations`` reaches the model registered under that name, ``GET /ping``
answers health checks. Errors come back the way SageMaker Runtime sends them (status, the
``x-amzn-ErrorType`` header and a JSON body botocore parses), so a boto3 client pointed here with
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` meets the same exceptions as in AWS. Served by Waitress
(``LoopbackServer``: a thread pool, HTTP/1.1 keep-alive, so clients reuse their connections as with
SageMaker Runtime) with Werkzeug's routing.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Protocol

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from offline_stack.loopback_server import LOOPBACK, LoopbackServer

ACCOUNT_ID = "123456789012"


class InferenceModel(Protocol):
    """What an endpoint serves: bytes in, bytes out, as a SageMaker model container does."""

    def invoke(self, body: bytes, content_type: str, accept: str, custom_attributes: str) -> tuple[bytes, str]: ...


class ModelFailure(Exception):
    """The model container answered ``status`` (SageMaker Runtime reports it as a ModelError)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ServiceFault(Exception):
    """SageMaker Runtime itself refuses the call (throttling, unavailability, internal failure)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class EndpointServer(LoopbackServer):
    """Serve models by endpoint name until ``stop()``; use as a context manager in tests."""

    def __init__(self, port: int = 0, region: str = "us-east-1", threads: int = 8, host: str = LOOPBACK) -> None:
        self.models: dict[str, InferenceModel] = {}
        # endpoint -> called with (request body, its content type, answer, its content type) after each answer
        self.observers: dict[str, Callable[[bytes, str, bytes, str], None]] = {}
        # called with (endpoint, the model's status or None for no answer, model latency in seconds) after each
        # invocation that reached a model: what SageMaker's invocation metrics count
        self.invocation_observers: list[Callable[[str, int | None, float], None]] = []
        # (request, endpoint name) -> None when the caller may invoke it, else AWS's AccessDenied message
        self.authorize: Callable[[Request, str], str | None] | None = None
        self.refusals: list[str] = []  # what ``authorize`` refused, as the caller was told
        self.region = region
        self.invocations = 0
        self.client_addresses: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self._routes = Map(
            [
                Rule("/endpoints/<name>/invocations", methods=["POST"], endpoint="invoke"),
                Rule("/ping", methods=["GET"], endpoint="ping"),
            ]
        )
        super().__init__(self._wsgi_app, port=port, threads=threads, name="sagemaker-runtime", host=host)

    def serve(self, endpoint_name: str, model: InferenceModel) -> None:
        """Route ``endpoint_name`` to ``model``; replacing a model is atomic for callers."""
        self.models[endpoint_name] = model

    def remove(self, endpoint_name: str) -> None:
        self.models.pop(endpoint_name, None)

    def _wsgi_app(self, environ, start_response):
        request = Request(environ)
        try:
            rule, arguments = self._routes.bind_to_environ(environ).match()
        except HTTPException as exc:
            return exc(environ, start_response)
        response = self._ping() if rule == "ping" else self._invoke(request, arguments["name"])
        return response(environ, start_response)

    def _ping(self) -> Response:
        """200 while every served model is healthy (a model may say otherwise with ``healthy = False``)."""
        healthy = all(getattr(model, "healthy", True) for model in list(self.models.values()))
        return Response("", status=200 if healthy else 503)

    def _invoke(self, request: Request, endpoint_name: str) -> Response:
        with self._lock:
            self.invocations += 1
            self.client_addresses.append((request.remote_addr, request.environ.get("REMOTE_PORT")))
        refusal = self.authorize(request, endpoint_name) if self.authorize else None
        if refusal is not None:
            self.refusals.append(f"AccessDeniedException: {refusal}")
            return _error(403, "AccessDeniedException", refusal)
        model = self.models.get(endpoint_name)
        if model is None:
            return _error(400, "ValidationError", f"Endpoint {endpoint_name} of account {ACCOUNT_ID} not found.")
        request_type = request.headers.get("Content-Type", "application/octet-stream")
        started = time.perf_counter()
        try:
            body, content_type = model.invoke(
                request.get_data(),
                request_type,
                request.headers.get("Accept", "application/json"),
                request.headers.get("X-Amzn-SageMaker-Custom-Attributes", ""),
            )
        except ServiceFault as fault:
            return _error(fault.status, fault.code, fault.message)
        except ModelFailure as failure:
            self._observe(endpoint_name, failure.status, started)
            return self._model_error(endpoint_name, failure.status, failure.message)
        except Exception:  # the container answers 500 for anything its code raises
            self._observe(endpoint_name, 500, started)
            return self._model_error(endpoint_name, 500, "the model container failed")
        self._observe(endpoint_name, 200, started)
        observer = self.observers.get(endpoint_name)
        if observer is not None:
            observer(request.get_data(), request_type, body, content_type)
        return Response(
            body, status=200, content_type=content_type, headers={"x-Amzn-Invoked-Production-Variant": "AllTraffic"}
        )

    def _observe(self, endpoint_name: str, status: int | None, started: float) -> None:
        latency = time.perf_counter() - started
        for observer in list(self.invocation_observers):
            observer(endpoint_name, status, latency)

    def _model_error(self, endpoint_name: str, status: int, message: str) -> Response:
        log_stream = f"arn:aws:logs:{self.region}:{ACCOUNT_ID}:log-group:/aws/sagemaker/Endpoints/{endpoint_name}"
        kind = "CLIENT" if 400 <= status < 500 else "SERVER"
        return _error(
            424,
            "ModelError",
            f'Received {kind.lower()} error ({status}) from primary with message "{message}". '
            f"See {log_stream} for more information.",
            ErrorCode=f"{kind}_ERROR_FROM_MODEL",
            OriginalStatusCode=status,
            OriginalMessage=message,
            LogStreamArn=log_stream,
        )


def _error(status: int, code: str, message: str, **members) -> Response:
    return Response(
        json.dumps({"Message": message, **members}),
        status=status,
        content_type="application/json",
        headers={"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazon.sagemaker/"},
    )
