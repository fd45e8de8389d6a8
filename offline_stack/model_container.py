"""A local stand-in for the SageMaker PyTorch inference container, serving one model artifact.

Like the real container it answers ``GET /ping`` and ``POST /invocations`` on its own port and runs
the artifact's ``code/inference.py`` through the AWS PyTorch inference toolkit's ``HandlerService``
(``sagemaker-pytorch-inference``, the version the 2.6 container runs), with ``<model_dir>/code`` on the
import path and ``SAGEMAKER_PROGRAM`` naming the module. Only TorchServe is left out: the handler is
called directly, one request at a time, as one TorchServe worker would.

Each container is its own process (``python -m offline_stack.model_container``), so two artifacts never share
imported modules, and nothing from training_jobs/ is importable unless the artifact carries it.
The parent side, which starts such a process and forwards invocations to it, is container_processes.py.
"""

from __future__ import annotations

import argparse
import os
import threading
from pathlib import Path

from werkzeug.wrappers import Request, Response


class _RequestProcessor:
    def __init__(self, headers: dict[str, str]) -> None:
        self._headers = headers

    def get_request_properties(self) -> dict[str, str]:
        return self._headers


class _ServingContext:
    """The parts of TorchServe's ``Context`` the toolkit reads and writes."""

    def __init__(self, model_dir: str) -> None:
        self.model_name = "model"
        self.system_properties = {"model_dir": model_dir, "gpu_id": None}
        self.request_processor = [_RequestProcessor({})]
        self.status: tuple[int, str] | None = None
        self.response_content_type: str | None = None

    def set_response_status(self, code: int, phrase: str) -> None:
        self.status = (code, phrase)

    def set_response_content_type(self, index: int, value: str) -> None:
        self.response_content_type = value


class ToolkitHandler:
    """Load an artifact with the toolkit's HandlerService and answer invocations as the container does."""

    def __init__(self, model_dir: Path, program: str = "inference.py") -> None:
        from sagemaker_pytorch_serving_container.handler_service import HandlerService

        os.environ["SAGEMAKER_PROGRAM"] = program
        self._context = _ServingContext(str(model_dir))
        self._service = HandlerService()
        self._service.initialize(self._context)
        self._lock = threading.Lock()

    def invoke(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, str]:
        with self._lock:
            self._context.request_processor = [_RequestProcessor(headers)]
            self._context.status, self._context.response_content_type = None, None
            answer = self._service.handle([{"body": body}], self._context)[0]
            status = self._context.status[0] if self._context.status else 200
            content_type = self._context.response_content_type or "text/plain"
        data = answer if isinstance(answer, bytes) else str(answer).encode()
        return status, data, content_type


def container_app(handler: ToolkitHandler):
    def app(environ, start_response):
        request = Request(environ)
        if request.path == "/ping" and request.method == "GET":
            response = Response("", status=200)
        elif request.path == "/invocations" and request.method == "POST":
            status, data, content_type = handler.invoke(request.get_data(), dict(request.headers))
            response = Response(data, status=status, content_type=content_type)
        else:
            response = Response("not found", status=404)
        return response(environ, start_response)

    return app


def main(argv: list[str] | None = None) -> None:
    from waitress import serve

    parser = argparse.ArgumentParser(description="Serve one model artifact as a SageMaker container would.")
    parser.add_argument("--model-dir", type=Path, required=True, help="an untarred model.tar.gz")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--program", default=os.environ.get("SAGEMAKER_PROGRAM", "inference.py"))
    args = parser.parse_args(argv)
    handler = ToolkitHandler(args.model_dir.resolve(), args.program)
    print(f"model container ready on 127.0.0.1:{args.port}", flush=True)
    serve(container_app(handler), host="127.0.0.1", port=args.port, threads=4, _quiet=True)


if __name__ == "__main__":
    main()
