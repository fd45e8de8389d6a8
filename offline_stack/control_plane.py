"""The AWS control plane on loopback: moto in server mode, reached by boto3 through AWS_ENDPOINT_URL.

moto 5 completes training jobs and puts endpoints InService at once; the offline stack runs the real
training and serving itself (see docs/offline-stack.md, "What the demo runs, and what is real"). moto also lacks
``UpdateEndpoint`` and several of SageMaker's refusals: ``aws_rules.sagemaker`` adds them (the endpoint moves
to the new config as SageMaker's does once the new fleet is InService; a Failed endpoint cannot be updated;
instances count against a quota), so the deploy function's paths run offline as they would in AWS.

With ``emulate_lifecycles()`` (what the offline stack's pipeline runs need), jobs and endpoints go
through their real states instead: a new training job is InProgress until someone (the offline stack's
``Lifecycles``) finishes it, ``StopTrainingJob`` makes it Stopping, and a created or updated endpoint is
Creating or Updating until it is served. ``serve_functions`` answers Lambda's Invoke API on the same port,
which is where moto's Step Functions interpreter sends a state machine's ``lambda:invoke`` tasks.
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import traceback
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable

import boto3
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from offline_stack.aws_rules import iam as iam_rules
from offline_stack.aws_rules import sagemaker as sagemaker_rules
from offline_stack.aws_rules.iam import Role, Roles
from offline_stack.loopback_server import LOOPBACK
from offline_stack.sam_template import PSEUDO_PARAMETERS

DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


# Lambda's Invoke API: POST /2015-03-31/functions/<name or ARN>/invocations
_INVOCATIONS_PREFIX, _INVOCATIONS_SUFFIX = "/2015-03-31/functions/", "/invocations"
# The lambda function a state machine task names -> its result; raising is a function error.
FunctionInvoker = Callable[[str, dict], dict]


class ControlPlane:
    """A moto server on 127.0.0.1; ``environment()`` is what a process needs to reach it."""

    def __init__(self, port: int = 0, host: str = LOOPBACK) -> None:
        self._host, self._port = host, port
        self._server = None
        self._thread: threading.Thread | None = None
        self._functions: FunctionInvoker | None = None
        self._moto_port_before: str | None = None  # set when this control plane took MOTO_PORT
        self.lifecycles_on = False
        self.roles: Roles | None = None  # when set, requests signed with a role's key are held to its policy
        self.url = ""

    def start(self) -> ControlPlane:
        # UpdateEndpoint, and SageMaker's refusals moto lacks (a channel is checked as the job's role lists it)
        sagemaker_rules.install(_emulating_lifecycles, _roles_of_this_request)
        iam_rules.install_in_moto(_roles_of_this_request)  # each role held to its own policy
        _add_training_and_endpoint_lifecycles_to_moto()
        _make_update_model_package_partial_in_moto()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request otherwise
        moto = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            self._host,
            self._port,
            self._route_lambda_invocations(moto),
            threaded=True,
            request_handler=MotoRequestHandler,
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="control-plane", daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._thread.join()
            self._server = None
        if self._moto_port_before is not None:
            os.environ.pop("MOTO_PORT", None)
            os.environ.update({"MOTO_PORT": self._moto_port_before} if self._moto_port_before else {})

    def serve_functions(self, invoke: FunctionInvoker) -> None:
        """Answer Lambda Invoke calls with ``invoke(function_name, event)``."""
        self._functions = invoke

    def enable_state_machine_executions(self) -> None:
        """Have moto run state machines' definitions (its interpreter), with their tasks calling this server.

        moto's interpreter sends its tasks to ``http://localhost:$MOTO_PORT``: one control plane per process
        can run executions, the last one that enabled them.
        """
        request = urllib.request.Request(  # noqa: S310 (loopback)
            f"{self.url}/moto-api/config",
            data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        urllib.request.urlopen(request, timeout=10).read()  # noqa: S310 (loopback)
        self._moto_port_before = os.environ.get("MOTO_PORT", "")
        os.environ["MOTO_PORT"] = str(self._server.server_address[1])

    def enforce_roles(self, roles: Roles | None) -> None:
        """Hold every request signed with one of ``roles``' keys to that role's policy (``aws_rules.iam``);
        the operator's dummy credentials stay an administrator's. None: back to moto's own behaviour."""
        self.roles = roles

    def client_as(self, role: Role | None, service: str):
        """A client of this control plane that signs as ``role`` (the operator when None)."""
        session = role.session(PSEUDO_PARAMETERS["AWS::Region"]) if role else self.session()
        return session.client(service, endpoint_url=self.url)

    def emulate_lifecycles(self) -> None:
        """Jobs stay InProgress and endpoints Creating/Updating until the offline stack moves them on.

        For requests to this control plane only: moto's backends are per process, and another offline stack in
        the same process keeps moto's instant jobs and endpoints."""
        self.lifecycles_on = True

    def _route_lambda_invocations(self, moto):
        def application(environ, start_response):
            path = environ.get("PATH_INFO", "")
            if not (path.startswith(_INVOCATIONS_PREFIX) and path.endswith(_INVOCATIONS_SUFFIX)):
                _keep_form_body(environ)
                _SERVING.control_plane = self  # moto answers in this thread: its patches ask who is asked
                try:
                    return moto(environ, start_response)
                finally:
                    _SERVING.control_plane = None
            request = Request(environ)
            name = urllib.parse.unquote(path[len(_INVOCATIONS_PREFIX) : -len(_INVOCATIONS_SUFFIX)]).split(":")
            function_name = name[6] if len(name) >= 7 else name[-1]  # an ARN, a partial ARN or a name
            refusal = self._refused_invocation(request, function_name, name[7] if len(name) >= 8 else None)
            if refusal is not None:
                return refusal(environ, start_response)
            return self._invoke(function_name, request.get_data())(environ, start_response)

        return application

    def _refused_invocation(self, request: Request, function_name: str, qualifier: str | None) -> Response | None:
        """A signed Invoke is held to its role's policy like every other request (the state machine's tasks
        are): ``lambda:InvokeFunction`` on the function's ARN, qualified when the request names a version or
        alias. None: allowed (or the operator's)."""
        if self.roles is None:
            return None
        region = iam_rules.credential_scope(request.headers).split("/")[2:3] or [PSEUDO_PARAMETERS["AWS::Region"]]
        parameters = {"FunctionName": function_name, "Qualifier": qualifier or request.args.get("Qualifier")}
        account = PSEUDO_PARAMETERS["AWS::AccountId"]
        raw_path = request.environ.get("RAW_URI") or request.full_path.rstrip("?")
        try:
            self.roles.authorize(
                request.method,
                raw_path,
                request.headers,
                request.get_data(),
                lambda: iam_rules.permissions_for("lambda", "Invoke", parameters, region[0], account),
            )
        except iam_rules.AccessDenied as denied:
            kind = "AccessDeniedException" if denied.permission else "InvalidSignatureException"
            return Response(
                json.dumps({"Type": "User", "Message": str(denied)}),
                403,
                # Lambda names every answer's request; moto's interpreter reads it from a refusal
                headers={"x-amzn-ErrorType": kind, "x-amzn-RequestId": str(uuid.uuid4())},
                content_type="application/json",
            )
        return None

    def _invoke(self, function_name: str, payload: bytes) -> Response:
        if self._functions is None:
            return Response(json.dumps({"message": "no functions are served"}), 404, content_type="application/json")
        try:
            event = json.loads(payload or b"{}")
            result = self._functions(function_name, event)
        except Exception as exc:  # a function error, answered as Lambda answers an unhandled one
            error = {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_tb(exc.__traceback__),
            }
            return Response(
                json.dumps(error), 200, headers={"X-Amz-Function-Error": "Unhandled"}, content_type="application/json"
            )
        return Response(json.dumps(result), 200, content_type="application/json")

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


# The control plane whose request this thread is answering (moto's patches below act for it only).
_SERVING = threading.local()


RAW_FORM_BODY = "offline.raw_form_body"


def _keep_form_body(environ) -> None:
    """Keep a form-encoded body's bytes as sent: moto parses query-protocol requests (CloudFormation, IAM, STS)
    into their form and leaves no body, and a SigV4 signature covers the bytes (``aws_rules.iam``)."""
    if not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        return
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ[RAW_FORM_BODY] = body
    environ["wsgi.input"] = io.BytesIO(body)


def _roles_of_this_request() -> Roles | None:
    control_plane = getattr(_SERVING, "control_plane", None)
    return control_plane.roles if control_plane is not None else None


def _emulating_lifecycles() -> bool:
    control_plane = getattr(_SERVING, "control_plane", None)
    return control_plane is not None and control_plane.lifecycles_on


def _add_training_and_endpoint_lifecycles_to_moto() -> None:
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeEndpoint, FakeTrainingJob, FakeTransformJob
    from moto.sagemaker.responses import ActionResult, SageMakerResponse

    if hasattr(SageMakerResponse, "stop_training_job"):
        return
    created_job, created_endpoint = FakeTrainingJob.__init__, FakeEndpoint.__init__
    created_transform = FakeTransformJob.__init__

    def transform_in_progress(self, *args, **kwargs) -> None:
        created_transform(self, *args, **kwargs)
        if _emulating_lifecycles():  # moto completes it at once; offline_stack/transform_executor.py runs it
            self.transform_job_status, self.transform_end_time = "InProgress", None

    def job_in_progress(self, *args, **kwargs) -> None:
        specification = kwargs.get("algorithm_specification", args[4] if len(args) > 4 else {})
        definitions = list(specification.get("MetricDefinitions", []))
        created_job(self, *args, **kwargs)
        if _emulating_lifecycles():
            self.training_job_status, self.secondary_status = "InProgress", "Training"
            self.training_end_time, self.final_metric_data_list = None, []
            # moto replaces the job's metric definitions with a sample of its own; SageMaker keeps them
            self.algorithm_specification["MetricDefinitions"] = definitions

    def endpoint_creating(self, *args, **kwargs) -> None:
        created_endpoint(self, *args, **kwargs)
        if _emulating_lifecycles():
            self.endpoint_status = "Creating"

    def stop_training_job(self) -> ActionResult:
        job = self.sagemaker_backend.training_jobs.get(self._get_param("TrainingJobName"))
        if job is None:
            raise ValidationError(message="Could not find the training job.")
        if job.training_job_status == "InProgress":
            job.training_job_status, job.secondary_status = "Stopping", "Stopping"
        return ActionResult({})

    def stop_transform_job(self) -> ActionResult:
        job = self.sagemaker_backend.transform_jobs.get(self._get_param("TransformJobName"))
        if job is None:
            raise ValidationError(message="Could not find the transform job.")
        if job.transform_job_status == "InProgress":
            job.transform_job_status = "Stopping"
        return ActionResult({})

    FakeTrainingJob.__init__, FakeEndpoint.__init__ = job_in_progress, endpoint_creating
    FakeTransformJob.__init__ = transform_in_progress
    SageMakerResponse.stop_training_job = stop_training_job
    SageMakerResponse.stop_transform_job = stop_transform_job


def sagemaker_state():
    """moto's SageMaker backend for the offline account and region (in this process): what lifecycles change."""
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[PSEUDO_PARAMETERS["AWS::AccountId"]][PSEUDO_PARAMETERS["AWS::Region"]]


def _make_update_model_package_partial_in_moto() -> None:
    """SageMaker's UpdateModelPackage changes what it is given; moto's clears the rest (status, metadata)."""
    from moto.sagemaker.models import SageMakerModelBackend

    original = SageMakerModelBackend.update_model_package
    if getattr(original, "partial", False):
        return

    def update_model_package(self, model_package_arn: str, model_approval_status, approval_description, **rest):
        package = self.model_packages.get(self.model_package_name_mapping.get(model_package_arn, model_package_arn))
        if package is not None:
            model_approval_status = model_approval_status or package.model_approval_status
            if approval_description is None:
                approval_description = package.approval_description
            rest["customer_metadata_properties"] = {
                **(package.customer_metadata_properties or {}),
                **(rest.get("customer_metadata_properties") or {}),
            }
        return original(
            self,
            model_package_arn=model_package_arn,
            model_approval_status=model_approval_status,
            approval_description=approval_description,
            **rest,
        )

    update_model_package.partial = True
    SageMakerModelBackend.update_model_package = update_model_package
