"""The AWS control plane on loopback: moto in server mode, reached by boto3 through AWS_ENDPOINT_URL.

moto 5 completes training jobs and puts endpoints InService at once; the offline stack runs the real
training and serving itself (see README, "What is real and what is emulated"). moto also lacks
``UpdateEndpoint``: ``ControlPlane`` adds it (the endpoint moves to the new config, as SageMaker's does
once the new fleet is InService), so the deploy function's blue/green path runs offline too.
"""

from __future__ import annotations

import logging
import urllib.request

import boto3
from moto.server import ThreadedMotoServer

from local.loopback_server import LOOPBACK
from local.sam_template import PSEUDO_PARAMETERS

DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


class ControlPlane:
    """A moto server on 127.0.0.1; ``environment()`` is what a process needs to reach it."""

    def __init__(self, port: int = 0, host: str = LOOPBACK) -> None:
        self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        self.url = ""

    def start(self) -> ControlPlane:
        _add_update_endpoint_to_moto()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request otherwise
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget every resource (moto's own reset API)."""
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST"), timeout=10)  # noqa: S310

    def environment(self) -> dict[str, str]:
        region = PSEUDO_PARAMETERS["AWS::Region"]
        return {"AWS_ENDPOINT_URL": self.url, "AWS_REGION": region, "AWS_DEFAULT_REGION": region, **DUMMY_CREDENTIALS}

    def client(self, service: str):
        return self.session().client(service, endpoint_url=self.url)

    @staticmethod
    def session() -> boto3.session.Session:
        """A session with the dummy credentials, in the template's region (moto takes any credentials)."""
        return boto3.session.Session(
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=PSEUDO_PARAMETERS["AWS::Region"],
        )


def _add_update_endpoint_to_moto() -> None:
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.responses import ActionResult, SageMakerResponse

    if hasattr(SageMakerResponse, "update_endpoint"):
        return

    def update_endpoint(self) -> ActionResult:
        backend = self.sagemaker_backend
        endpoint = backend.endpoints.get(self._get_param("EndpointName"))
        config = backend.endpoint_configs.get(self._get_param("EndpointConfigName"))
        if endpoint is None or config is None:
            raise ValidationError(message="Could not find endpoint or endpoint configuration.")
        endpoint.endpoint_config_name = config.endpoint_config_name
        endpoint.production_variants = endpoint._process_production_variants(config.production_variants)
        return ActionResult({"EndpointArn": endpoint.arn})

    SageMakerResponse.update_endpoint = update_endpoint
