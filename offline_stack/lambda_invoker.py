"""Call a function's handler in this process the way Lambda would, as template.yaml wires it.

The offline equivalent of ``sam local invoke``: the handler string, CodeUri, layers and the
environment (Globals + function, parameter defaults resolved) all come from the template, so a
broken handler path or a missing variable fails here as it would in AWS. Each ``LambdaFunction``
is one execution environment: its cold start imports the handler (and the layer's modules) anew.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from offline_stack.sam_template import PSEUDO_PARAMETERS, SamTemplate


class TemplateWiringError(RuntimeError):
    """template.yaml does not wire the function so that Lambda could run it."""


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"

    @property
    def invoked_function_arn(self) -> str:
        region, account = PSEUDO_PARAMETERS["AWS::Region"], PSEUDO_PARAMETERS["AWS::AccountId"]
        return f"arn:aws:lambda:{region}:{account}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "offline"

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_seconds * 1000


class LambdaFunction:
    """One execution environment of a template function, usable as a context manager.

    ``environment`` adds variables the way the Lambda service or ``sam local invoke --env-vars``
    would (for instance ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` pointing at a local server).
    """

    def __init__(
        self,
        logical_id: str,
        template: SamTemplate | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        self.template = template or SamTemplate.load()
        self.logical_id = logical_id
        properties = self.template.function_properties(logical_id)
        self.code_dir = self.template.root / properties["CodeUri"]
        self.module_name, _, self.handler_name = properties["Handler"].rpartition(".")
        self.layer_dirs, files_layers = [], []
        for layer in properties.get("Layers", []):
            (self.layer_dirs if self._is_python_layer(layer) else files_layers).append(self._layer_dir(layer))
        self.opt_dir = self._opt_dir(files_layers)
        self.function_name = self.template.resolve(properties.get("FunctionName", logical_id))
        self.timeout_seconds = int(properties.get("Timeout", 3))
        # As the template declares them (what `sam local invoke` gets), then as this process runs them.
        self.declared_environment = {
            name: str(self.template.resolve(value)) for name, value in properties["Environment"]["Variables"].items()
        }
        self.environment = {
            **self._lambda_service_variables(properties),
            **{name: self._mounted(value) for name, value in self.declared_environment.items()},
            **(environment or {}),
        }
        self._saved_environment: dict[str, str] | None = None
        self.handler = None

    def __enter__(self) -> LambdaFunction:
        self._saved_environment = dict(os.environ)
        os.environ.update(self.environment)
        try:
            self.handler = self._cold_start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        os.environ.clear()
        os.environ.update(self._saved_environment or {})

    def invoke(self, event: dict) -> dict:
        if self.handler is None:
            raise RuntimeError("use the LambdaFunction in a with-block: its cold start runs on entry")
        context = LambdaContext(
            self.function_name, int(self.environment["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]), self.timeout_seconds
        )
        return self.handler(event, context)

    @property
    def module(self) -> ModuleType:
        return sys.modules[self._unique_module_name]

    @property
    def _unique_module_name(self) -> str:
        return f"lambda_{self.logical_id}_{self.module_name.replace('/', '.')}"

    def _cold_start(self):
        self._forget_layer_modules()
        source = self.code_dir / (self.module_name.replace(".", "/") + ".py")
        if not source.is_file():
            raise TemplateWiringError(
                f"{self.logical_id}: Handler module {self.module_name!r} is not at {source} (CodeUri + Handler)"
            )
        spec = importlib.util.spec_from_file_location(self._unique_module_name, source)
        module = importlib.util.module_from_spec(spec)
        sys.modules[self._unique_module_name] = module
        spec.loader.exec_module(module)
        handler = getattr(module, self.handler_name, None)
        if not callable(handler):
            raise TemplateWiringError(f"{self.logical_id}: {source} has no function {self.handler_name!r}")
        return handler

    def _forget_layer_modules(self) -> None:
        """A new execution environment imports the layer anew (its cached clients and settings too)."""
        for name, module in list(sys.modules.items()):
            origin = getattr(module, "__file__", None) or ""
            if any(origin.startswith(str(layer_dir)) for layer_dir in self.layer_dirs):
                del sys.modules[name]

    def _layer_resource(self, layer) -> dict:
        if not (isinstance(layer, dict) and "Ref" in layer):
            raise TemplateWiringError(
                f"{self.logical_id}: layer {layer!r} is not one of this template's layers; offline runs "
                "(and `sam local invoke` without a network) cannot fetch layers by ARN"
            )
        return self.template.resource(layer["Ref"])

    def _is_python_layer(self, layer) -> bool:
        """`sam build` puts a layer built for Python under python/ (on the import path); others land in /opt."""
        return str(self._layer_resource(layer).get("Metadata", {}).get("BuildMethod", "")).startswith("python")

    def _opt_dir(self, files_layers: list[Path]) -> Path | None:
        if len(files_layers) > 1:
            raise TemplateWiringError(
                f"{self.logical_id}: offline runs map /opt to one files layer; this function has {len(files_layers)}"
            )
        return files_layers[0] if files_layers else None

    def _mounted(self, value: str) -> str:
        """A path under /opt names the files layer's folder offline (Lambda extracts that layer to /opt)."""
        if self.opt_dir is not None and (value == "/opt" or value.startswith("/opt/")):
            return str(self.opt_dir / value[len("/opt") :].lstrip("/"))
        return value

    def _layer_dir(self, layer) -> Path:
        resource = self._layer_resource(layer)
        layer_dir = (self.template.root / resource["Properties"]["ContentUri"]).resolve()
        if not self._is_python_layer(layer):
            return layer_dir
        if str(layer_dir) not in {str(Path(p).resolve()) for p in sys.path if p}:
            raise TemplateWiringError(
                f"{self.logical_id}: layer {layer['Ref']} ({layer_dir}) is not on the import path; "
                "Lambda mounts it at /opt/python (pytest's pythonpath setting lists it)"
            )
        return layer_dir

    def _lambda_service_variables(self, properties: dict) -> dict[str, str]:
        """What the Lambda service itself sets in every execution environment."""
        region = PSEUDO_PARAMETERS["AWS::Region"]
        return {
            "AWS_LAMBDA_FUNCTION_NAME": str(self.function_name),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(properties.get("MemorySize", 128)),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            # No X-Ray daemon runs offline (sam local invoke disables tracing the same way).
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
