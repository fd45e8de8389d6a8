"""Least privilege, proved offline: each role's policy allows what its holder does, and every statement is needed.

Every function, training job and endpoint acts as its own role from the template, and the control plane and the
endpoint server hold it to that role's policy on real resource ARNs and conditions (offline_stack/aws_rules/iam.py).
Here each role runs its own scenario, through the real code: once with its whole policy (it must succeed), then once
per statement with that statement removed (it must meet AccessDenied). A statement nothing offline can exercise is
listed below with the reason.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import tarfile

import boto3
import pytest
from botocore.exceptions import ClientError

from dog_breeds.adapters.s3_objects import put_once
from offline_stack.aws_rules.iam import STATE_MACHINE_INTERPRETER_KEY, Roles, invoke_endpoint_authorizer
from offline_stack.control_plane import sagemaker_state
from offline_stack.data_capture import DataCapture
from offline_stack.endpoint_server import EndpointServer
from offline_stack.lambda_invoker import LambdaFunction
from offline_stack.local_endpoints import LocalEndpoints
from offline_stack.sam_template import PROJECT_ROOT, SamTemplate
from offline_stack.sample_events import OFFLINE_BUCKET, SAMPLE_PACKAGES, SAMPLE_TRAINING_JOB
from offline_stack.training_executor import LocalTrainingExecutor
from offline_stack.transform_executor import LocalTransformExecutor
from tests.conftest import ENDPOINT_NAME, TEMPLATE_ROLES, load_event
from tests.support.least_privilege_exemptions import NOT_EXERCISED_OFFLINE, ROLES_NOT_ENFORCED_OFFLINE
from tests.support.models import CannedModel

TEMPLATE = SamTemplate.load()
GOLDEN_PHOTO = "001.Affenpinscher/a.jpg"


def _policy(logical_id: str) -> dict:
    return json.loads((PROJECT_ROOT / "policies" / f"{_policy_name(logical_id)}.json").read_text())


def _policy_name(logical_id: str) -> str:
    return TEMPLATE.resource(logical_id)["Properties"]["Policies"][0]["PolicyName"]


def _without(logical_id: str, sid: str) -> dict:
    document = _policy(logical_id)
    kept = [statement for statement in document["Statement"] if statement["Sid"] != sid]
    assert len(kept) == len(document["Statement"]) - 1, f"{logical_id} has no statement {sid}"
    return {**document, "Statement": kept}


@contextlib.contextmanager
def holding(control_plane, overrides: dict[str, dict] | None = None):
    """The control plane enforcing the template's roles, with ``overrides`` in place of their policies."""
    roles = Roles.from_template(TEMPLATE, overrides)
    control_plane.enforce_roles(roles)
    try:
        yield roles
    finally:
        control_plane.enforce_roles(TEMPLATE_ROLES)


def _function(control_plane, roles: Roles, logical_id: str, **environment: str) -> LambdaFunction:
    role = roles.for_function(TEMPLATE, logical_id)
    return LambdaFunction(logical_id, environment={**control_plane.environment(), **role.environment(), **environment})


def _deploy_as_operator(control_plane) -> None:
    """An endpoint made by the operator (the scenarios of other roles need one)."""
    with LambdaFunction("DeployEndpointFunction", environment=control_plane.environment()) as function:
        function.invoke(load_event("deploy-endpoint-approved.json"))


def _completed_extraction(control_plane, roles: Roles, hyperparameters: dict) -> str:
    """An extraction job of this stack that completed and left its features in the feature cache (started by the
    operator: moto completes a job at once; its output written as the training role, the only one the bucket policy
    lets write there); the folder a job with ``hyperparameters`` on the offline data set looks in."""
    from dog_breeds.adapters.s3_objects import list_objects
    from dog_breeds.start_training import feature_cache_folder

    s3, sagemaker = control_plane.client("s3"), control_plane.client("sagemaker")
    folder = feature_cache_folder(hyperparameters, list_objects(s3, OFFLINE_BUCKET, "data/"))
    name = "dog-breeds-extraction"
    sagemaker.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": "x", "TrainingInputMode": "File"},
        RoleArn=TEMPLATE_ROLES.by_logical_id["SageMakerExecutionRole"].arn,
        HyperParameters={"extract-features": "true"},
        OutputDataConfig={"S3OutputPath": f"s3://{OFFLINE_BUCKET}/{folder.rstrip('/')}"},
        ResourceConfig={"InstanceType": "ml.m5.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )
    output = sagemaker.describe_training_job(TrainingJobName=name)["ModelArtifacts"]["S3ModelArtifacts"]
    training = control_plane.client_as(roles.by_logical_id["SageMakerExecutionRole"], "s3")
    training.put_object(Bucket=OFFLINE_BUCKET, Key=output.split(f"{OFFLINE_BUCKET}/", 1)[1], Body=b"extracted features")
    return output


def start_training(control_plane, roles: Roles) -> None:
    event = {**load_event("start-training.json"), "idempotency_token": "least-privilege"}
    _completed_extraction(control_plane, roles, event["hyperparameters"])
    with _function(control_plane, roles, "StartTrainingFunction") as function:
        # a cache hit: the function checks the extraction job, reads the features once and records their digest on it
        assert function.invoke(event)["feature_cache"].startswith("hit ")
        function.invoke(event)  # the retry finds the job
        # another job of the same code: the code's key exists (412), so the function reads it back to compare; the
        # digest is now read from the extraction job's tag
        function.invoke({**event, "idempotency_token": "least-privilege-2"})


def deploy_endpoint(control_plane, roles: Roles) -> None:
    scaling = control_plane.client("application-autoscaling")
    with _function(control_plane, roles, "DeployEndpointFunction") as function:
        function.invoke(load_event("deploy-endpoint-approved.json"))  # create (model, config, endpoint, tags)
        scaling.register_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=f"endpoint/{ENDPOINT_NAME}/variant/AllTraffic",
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
            MinCapacity=1,
            MaxCapacity=2,
        )
        function.invoke(
            load_event("deploy-endpoint-another-approved-on-c5.json")
        )  # another type: out of scaling, update
        sagemaker_state().endpoints[ENDPOINT_NAME].endpoint_status = "Failed"
        assert function.invoke(load_event("deploy-endpoint-approved.json"))["action"] == "deleted-failed"


def register_autoscaling(control_plane, roles: Roles) -> None:
    _deploy_as_operator(control_plane)
    with _function(control_plane, roles, "RegisterAutoscalingFunction") as function:
        function.invoke(load_event("register-autoscaling.json"))


def release_gate(control_plane, roles: Roles) -> None:
    """A candidate that passes its test split, scored on the golden set: its scoring model and Batch Transform job
    made (the scoring role passed), then, once the job has written its answer, the answer read and the decision
    recorded."""
    _deploy_as_operator(control_plane)  # the gate compares with what the endpoint serves
    control_plane.client("s3").put_object(Bucket=OFFLINE_BUCKET, Key=f"golden/{GOLDEN_PHOTO}", Body=b"jpeg")
    sagemaker_state().training_jobs[SAMPLE_TRAINING_JOB].final_metric_data_list = [
        {"MetricName": "test:accuracy", "Value": 0.9}
    ]
    with _function(control_plane, roles, "ReleaseGateFunction") as function:
        judged = function.invoke({"training_job_name": SAMPLE_TRAINING_JOB})
        assert judged["decision"] == "Scoring", judged
        # moto completes both jobs (the candidate's and the serving model's) at once; Batch Transform's answers:
        scoring = control_plane.client_as(roles.by_logical_id["SageMakerGoldenScoringRole"], "s3")
        answer = json.dumps({"predictions": [{"breed": "Affenpinscher", "class_index": 0, "probability": 0.9}]})
        for job in sagemaker_state().transform_jobs.values():
            LocalTransformExecutor.write_answer(
                scoring,
                job.transform_input["DataSource"]["S3DataSource"]["S3Uri"],
                f"golden/{GOLDEN_PHOTO}",
                job.transform_output["S3OutputPath"],
                answer.encode(),
                "application/json",
            )
        decided = function.invoke({"scored_model_package_arn": judged["model_package_arn"]})
        assert decided["decision"] == "Approved", decided


def run_as_golden_scoring(control_plane, roles: Roles, tmp_path) -> None:
    """What Batch Transform does as the scoring role: a content-addressed model in, the golden photos listed and
    read, an answer written per photo (offline_stack/transform_executor.py's own calls)."""
    s3 = control_plane.client_as(roles.by_logical_id["SageMakerGoldenScoringRole"], "s3")
    operator = control_plane.client("s3")
    key = f"models/sha256/{'d' * 64}/model.tar.gz"
    put_once(operator, OFFLINE_BUCKET, key, _tarball("model.pt"), "application/gzip")
    LocalEndpoints._unpack(s3, f"s3://{OFFLINE_BUCKET}/{key}", tmp_path / "scored-model")
    operator.put_object(Bucket=OFFLINE_BUCKET, Key=f"golden/{GOLDEN_PHOTO}", Body=b"jpeg")
    golden = f"s3://{OFFLINE_BUCKET}/golden/"
    [photo] = LocalTransformExecutor.input_keys(s3, golden)
    s3.get_object(Bucket=OFFLINE_BUCKET, Key=photo)["Body"].read()
    output = f"s3://{OFFLINE_BUCKET}/golden-scores/dog-breeds-golden-0123456789ab-01234567/"
    LocalTransformExecutor.write_answer(s3, golden, photo, output, b"{}", "application/json")
    # and nothing else of the bucket: not the training data
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.get_object(Bucket=OFFLINE_BUCKET, Key="data/train/a/1.jpg")


def run_as_state_machine(control_plane, roles: Roles) -> None:
    """Every task of the pipeline's definition, called as moto's interpreter calls it: its own client, signed with
    its fixed key, which the control plane holds to the state machine's role (aws_rules/iam.py). Each Lambda task's
    function is invoked; each SageMaker task describes the names an execution passes (a training job the start
    function named, the stack's endpoint and its serverless twin). tests/integration/test_pipeline_executions.py
    runs the interpreter itself as the same role through every branch."""
    region = TEMPLATE.resolve({"Ref": "AWS::Region"})
    key, secret = STATE_MACHINE_INTERPRETER_KEY
    session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret, region_name=region)
    lambda_client = session.client("lambda", endpoint_url=control_plane.url)
    sagemaker = session.client("sagemaker", endpoint_url=control_plane.url)
    definition = json.loads(TEMPLATE.state_machine_definition("TrainingPipeline"))
    invoked: list[str] = []
    control_plane.serve_functions(lambda name, event: invoked.append(name) or {})
    try:
        for state in definition["States"].values():
            if state["Type"] != "Task":
                continue
            api = state["Resource"].rsplit(":", 1)[-1]
            if api == "invoke":
                lambda_client.invoke(FunctionName=state["Parameters"]["FunctionName"], Payload=b"{}")
            elif api == "describeTrainingJob":
                sagemaker.describe_training_job(TrainingJobName=SAMPLE_TRAINING_JOB)
            elif api == "describeEndpoint":
                for name in (ENDPOINT_NAME, f"{ENDPOINT_NAME}-serverless"):
                    try:
                        sagemaker.describe_endpoint(EndpointName=name)
                    except ClientError as error:  # authorized, then not found: allowed
                        if error.response["Error"]["Code"] != "ValidationException":
                            raise
            else:
                raise AssertionError(f"a task this scenario does not make: {state['Resource']}")
    finally:
        control_plane.serve_functions(None)
    assert len(invoked) == sum(1 for s in definition["States"].values() if s.get("Resource", "").endswith(":invoke"))


def predict(control_plane, roles: Roles) -> None:
    with EndpointServer() as server:
        server.serve(ENDPOINT_NAME, CannedModel())
        server.authorize = invoke_endpoint_authorizer(roles)
        environment = {"AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": server.url}
        with _function(control_plane, roles, "PredictFunction", **environment) as function:
            response = function.invoke(load_event("predict-jpeg.json"))
    # The API's caller sees a 5xx without internals; the endpoint said why
    assert response["statusCode"] == 200, (response["statusCode"], server.refusals)


def page(control_plane, roles: Roles) -> None:
    """The page function needs nothing of AWS but its logs and traces: both documents answer with its role."""
    with _function(control_plane, roles, "PageFunction") as function:
        for route in ("GET /", "GET /openapi.json"):
            event = {**load_event("predict-jpeg.json"), "routeKey": route, "body": None, "isBase64Encoded": False}
            assert function.invoke(event)["statusCode"] == 200, route


def _tarball(name: str) -> bytes:
    """A .tar.gz holding one empty file: a stand-in code package or model artifact."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        tar.addfile(tarfile.TarInfo(name), io.BytesIO(b""))
    return archive.getvalue()


def run_as_sagemaker(control_plane, roles: Roles, tmp_path) -> None:
    """What SageMaker does as the training role: a job's channels and code in, its model out (the offline stack's
    own code paths)."""
    s3 = control_plane.client_as(roles.by_logical_id["SageMakerExecutionRole"], "s3")
    operator = control_plane.client("s3")
    operator.put_object(Bucket=OFFLINE_BUCKET, Key="data/train/a/1.jpg", Body=b"jpeg")
    code, weights = "code/training_jobs-1/sourcedir.tar.gz", "pretrained/resnet50-11ad3fa6.pth"
    # content addresses are written once (the bucket policy): the seeded weights of that name stay
    put_once(operator, OFFLINE_BUCKET, code, _tarball("train.py"), "application/gzip")
    put_once(operator, OFFLINE_BUCKET, weights, b"tensors", "application/octet-stream")
    features = "feature-cache/0123/extract-job/output/model.tar.gz"  # an extraction job's output, from before
    s3.put_object(Bucket=OFFLINE_BUCKET, Key=features, Body=_tarball("0123/features.pt"))  # only this role may
    # the job's channels (isolated jobs get their code, ImageNet weights and cached features as channels too)
    for channel, key in (
        ("training", "data/"),
        ("pretrained", weights),
        ("code", code),
        ("features", "feature-cache/0123/"),
    ):
        LocalTrainingExecutor._download_prefix(s3, f"s3://{OFFLINE_BUCKET}/{key}", tmp_path / channel)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.pt").write_bytes(b"weights")
    job = {"OutputDataConfig": {"S3OutputPath": f"s3://{OFFLINE_BUCKET}/training-output"}}
    LocalTrainingExecutor._upload_model(s3, job, "job", tmp_path / "model", tmp_path / "model.tar.gz")
    # an extraction job's model.tar.gz (the features) goes to the feature cache
    job = {"OutputDataConfig": {"S3OutputPath": f"s3://{OFFLINE_BUCKET}/feature-cache/4567"}}
    LocalTrainingExecutor._upload_model(s3, job, "extract", tmp_path / "model", tmp_path / "features.tar.gz")


def run_as_endpoint(control_plane, roles: Roles, tmp_path) -> None:
    """What SageMaker does as the endpoint role: an approved model in (from its content address under models/), its
    captured requests out."""
    s3 = control_plane.client_as(roles.by_logical_id["SageMakerEndpointRole"], "s3")
    operator = control_plane.client("s3")
    for key in (f"models/sha256/{'a' * 64}/model.tar.gz",):
        operator.put_object(Bucket=OFFLINE_BUCKET, Key=key, Body=_tarball("model.pt"), IfNoneMatch="*")
        LocalEndpoints._unpack(s3, f"s3://{OFFLINE_BUCKET}/{key}", tmp_path / key.replace("/", "-"))
    destination = {"DestinationS3Uri": f"s3://{OFFLINE_BUCKET}/data-capture", "InitialSamplingPercentage": 100}
    capture = DataCapture(s3, ENDPOINT_NAME, "AllTraffic", destination)
    capture(b"{}", "application/json", b"{}", "application/json")
    capture.flush()
    # an update with auto-rollback alarms: SageMaker reads them as the endpoint's execution role (its model's)
    _deploy_as_operator(control_plane)
    with LambdaFunction("DeployEndpointFunction", environment=control_plane.environment()) as function:
        function.invoke(load_event("deploy-endpoint-another-approved-on-c5.json"))


def run_as_serverless_endpoint(control_plane, roles: Roles, tmp_path) -> None:
    """What SageMaker does as a serverless endpoint's role: an approved model in, the rollback alarms of an update
    read; no captured requests (serverless endpoints have none, and the role may not write them)."""
    role = roles.by_logical_id["SageMakerServerlessEndpointRole"]
    s3 = control_plane.client_as(role, "s3")
    key = f"models/sha256/{'c' * 64}/model.tar.gz"
    put_once(control_plane.client("s3"), OFFLINE_BUCKET, key, _tarball("model.pt"), "application/gzip")
    LocalEndpoints._unpack(s3, f"s3://{OFFLINE_BUCKET}/{key}", tmp_path / "serverless-model")
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.put_object(Bucket=OFFLINE_BUCKET, Key=f"data-capture/{ENDPOINT_NAME}/x.jsonl", Body=b"{}")
    # a serverless endpoint, then an update with auto-rollback alarms: read as the model's role, this one
    kind = {"ENDPOINT_KIND": "serverless", "SAGEMAKER_ENDPOINT_ROLE_ARN": role.arn}
    environment = {**control_plane.environment(), **kind}
    with LambdaFunction("DeployEndpointFunction", environment=environment) as function:
        function.invoke(load_event("deploy-endpoint-approved.json"))
        updated = function.invoke({"model_package_arn": SAMPLE_PACKAGES[1]})
    assert updated["action"] == "updated" and updated["endpoint_kind"] == "serverless", updated


SCENARIOS = {
    "StartTrainingFunctionRole": start_training,
    "DeployEndpointFunctionRole": deploy_endpoint,
    "RegisterAutoscalingFunctionRole": register_autoscaling,
    "ReleaseGateFunctionRole": release_gate,
    "PredictFunctionRole": predict,
    "PageFunctionRole": page,
    "SageMakerExecutionRole": run_as_sagemaker,
    "SageMakerEndpointRole": run_as_endpoint,
    "SageMakerServerlessEndpointRole": run_as_serverless_endpoint,
    "SageMakerGoldenScoringRole": run_as_golden_scoring,
    "TrainingPipelineRole": run_as_state_machine,
}


def _run(scenario, control_plane, roles, tmp_path) -> None:
    if scenario in (run_as_sagemaker, run_as_endpoint, run_as_serverless_endpoint, run_as_golden_scoring):
        scenario(control_plane, roles, tmp_path)
    else:
        scenario(control_plane, roles)


def test_every_role_has_a_scenario_or_a_reason():
    roles = {logical_id for logical_id, r in TEMPLATE.resources.items() if r["Type"] == "AWS::IAM::Role"}
    assert roles == set(SCENARIOS) | set(ROLES_NOT_ENFORCED_OFFLINE)


@pytest.mark.parametrize("logical_id", sorted(SCENARIOS))
def test_each_role_can_do_its_job_with_its_policy(control_plane, logical_id, tmp_path):
    with holding(control_plane) as roles:
        _run(SCENARIOS[logical_id], control_plane, roles, tmp_path)


CASES = [
    (logical_id, statement["Sid"])
    for logical_id in sorted(SCENARIOS)
    for statement in _policy(logical_id)["Statement"]
    if statement["Sid"] not in NOT_EXERCISED_OFFLINE
]


@pytest.mark.parametrize(("logical_id", "sid"), CASES, ids=[f"{r}-{s}" for r, s in CASES])
def test_removing_any_statement_makes_the_role_meet_access_denied(control_plane, logical_id, sid, tmp_path):
    with holding(control_plane, {logical_id: _without(logical_id, sid)}) as roles, pytest.raises(Exception) as error:
        _run(SCENARIOS[logical_id], control_plane, roles, tmp_path)
    # (S3 answers a HEAD it refuses with a bare 403: no body, so no AccessDenied code)
    denied = re.compile(r"AccessDenied|\(403\) when calling the HeadObject operation")
    assert denied.search(str(error.value)) or denied.search(repr(error.value)), error.value


def test_a_model_the_endpoint_role_cannot_read_is_refused_when_deployed_not_minutes_later(
    control_plane, control_function, tmp_path
):
    # The README once said to deploy the starter model from starter-model/, which the endpoint's role cannot read:
    # in AWS the endpoint would go Failed ("could not access model data") after minutes
    operator = control_plane.client("s3")
    inside = f"models/sha256/{'b' * 64}/model.tar.gz"
    for key in ("starter-model/model.tar.gz", "training-output/job/output/model.tar.gz", inside):
        operator.put_object(Bucket=OFFLINE_BUCKET, Key=key, Body=_tarball("model.pt"), IfNoneMatch="*")
    endpoint_role = TEMPLATE_ROLES.by_logical_id["SageMakerEndpointRole"]
    s3 = control_plane.client_as(endpoint_role, "s3")
    for outside in ("starter-model/model.tar.gz", "training-output/job/output/model.tar.gz"):
        with pytest.raises(Exception, match=r"AccessDenied|\(403\).*HeadObject"):  # S3 answers a HEAD with no body
            LocalEndpoints._unpack(s3, f"s3://{OFFLINE_BUCKET}/{outside}", tmp_path / "outside")
    LocalEndpoints._unpack(s3, f"s3://{OFFLINE_BUCKET}/{inside}", tmp_path / "inside")
    # So the deploy function refuses a version whose model is anywhere else, at once, naming where models may be
    sagemaker = control_plane.client("sagemaker")
    arn = sagemaker.create_model_package(
        ModelPackageGroupName=ENDPOINT_NAME,
        ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [{"Image": "x", "ModelDataUrl": f"s3://{OFFLINE_BUCKET}/starter-model/model.tar.gz"}],
            "SupportedContentTypes": ["image/jpeg"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    )["ModelPackageArn"]
    with control_function("DeployEndpointFunction") as function, pytest.raises(Exception) as refusal:
        function.invoke({"model_package_arn": arn})
    assert type(refusal.value).__name__ == "InvalidEventError"
    assert f"is not under s3://{OFFLINE_BUCKET}/models/sha256/<sha256>/" in str(refusal.value)
