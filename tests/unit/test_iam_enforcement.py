"""IAM as the offline stack enforces it on signed requests (``offline_stack/aws_rules/iam.py``), in tests/unit:
a role's SigV4 signature checked with its secret, each permission against its policy, and AWS's answers for a
refusal, through moto in-process (hooked as the control plane hooks it) and the endpoint server on loopback.
tests/integration/test_least_privilege.py holds every template role to its policy the same way."""

from __future__ import annotations

import types

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from offline_stack import control_plane
from offline_stack.aws_rules.iam import BAD_SIGNATURE, Policy, Role, Roles, install_in_moto, invoke_endpoint_authorizer
from offline_stack.endpoint_server import EndpointServer
from tests.support.models import CannedModel

ACCOUNT, REGION = "123456789012", "us-east-1"
ENDPOINT_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/dog-breeds"


def _role(name: str, *statements: dict) -> Role:
    document = {"Version": "2012-10-17", "Statement": list(statements)}
    return Role(
        name,
        f"arn:aws:iam::{ACCOUNT}:role/{name}",
        Policy([document]),
        access_key_id=f"ASIAOFFLINE{name.upper():0<9}"[:20],
        secret_access_key=f"secret-of-{name}",
        session_token=f"token-of-{name}",
    )


READER = _role(
    "reader",
    {"Effect": "Allow", "Action": ["sagemaker:DescribeEndpoint", "sagemaker:InvokeEndpoint"], "Resource": ENDPOINT_ARN},
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::bucket/allowed/*"},
)
NOBODY = _role("nobody")
ROLES = Roles([READER, NOBODY])


def _denied(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as refused:
        call()
    return refused.value.response["Error"]["Code"], refused.value.response["Error"].get("Message", "")


def test_a_role_knows_its_session_and_what_lambda_gives_its_functions():
    assert READER.session_arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/reader/offline"
    assert READER.environment() == {
        "AWS_ACCESS_KEY_ID": READER.access_key_id,
        "AWS_SECRET_ACCESS_KEY": "secret-of-reader",
        "AWS_SESSION_TOKEN": "token-of-reader",
    }
    credentials = READER.session(REGION).get_credentials()
    assert (credentials.access_key, credentials.secret_key, credentials.token) == (
        READER.access_key_id,
        "secret-of-reader",
        "token-of-reader",
    )
    assert ROLES.by_arn[READER.arn] is READER and ROLES.by_logical_id["nobody"] is NOBODY


@pytest.fixture
def signed_control_plane():
    """moto in-process, asking ``ROLES`` about every request signed with a role's key (operator requests pass)."""
    install_in_moto(control_plane._roles_of_this_request)  # as ControlPlane.start does (once per process)
    control_plane._SERVING.control_plane = types.SimpleNamespace(roles=ROLES, lifecycles_on=False)
    try:
        with mock_aws():
            operator = boto3.session.Session(
                aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
            )
            sagemaker = operator.client("sagemaker")
            sagemaker.create_model(
                ModelName="m",
                ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/x",
                PrimaryContainer={"Image": "i", "ModelDataUrl": "s3://bucket/m.tar.gz"},
            )
            variant = {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.m5.large"}
            for name in ("dog-breeds", "other"):
                sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant])
                sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
            s3 = operator.client("s3")
            s3.create_bucket(Bucket="bucket")
            for key in ("allowed/a.txt", "private/b.txt"):
                s3.put_object(Bucket="bucket", Key=key, Body=b"x")
            yield
    finally:
        del control_plane._SERVING.control_plane


def test_a_role_may_do_what_its_policy_allows_and_is_refused_the_rest_as_aws_says(signed_control_plane):
    sagemaker = READER.session(REGION).client("sagemaker")
    assert sagemaker.describe_endpoint(EndpointName="dog-breeds")["EndpointName"] == "dog-breeds"
    code, message = _denied(lambda: sagemaker.describe_endpoint(EndpointName="other"))
    assert code == "AccessDeniedException"
    assert message == (
        f"User: {READER.session_arn} is not authorized to perform: sagemaker:DescribeEndpoint on resource: "
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/other because no identity-based policy allows the "
        "sagemaker:DescribeEndpoint action"
    )
    s3 = READER.session(REGION).client("s3")
    assert s3.get_object(Bucket="bucket", Key="allowed/a.txt")["Body"].read() == b"x"
    s3.put_object(Bucket="bucket", Key="allowed/new.txt", Body=b"written by the role")  # S3's own signing rules
    assert _denied(lambda: s3.get_object(Bucket="bucket", Key="private/b.txt"))[0] == "AccessDenied"
    cloudwatch = NOBODY.session(REGION).client("cloudwatch")
    code, message = _denied(lambda: cloudwatch.describe_alarms(AlarmNames=["a"]))
    assert code in ("AccessDenied", "AccessDeniedException") and "cloudwatch:DescribeAlarms" in message


def test_a_request_signed_with_a_wrong_secret_is_refused_before_its_permissions_are_read(signed_control_plane):
    forged = boto3.session.Session(
        aws_access_key_id=READER.access_key_id,
        aws_secret_access_key="not-the-secret",
        aws_session_token=READER.session_token,
        region_name=REGION,
    )
    code, message = _denied(lambda: forged.client("sagemaker").describe_endpoint(EndpointName="dog-breeds"))
    assert (code, message) == ("InvalidSignatureException", BAD_SIGNATURE)
    code, _ = _denied(lambda: forged.client("s3").get_object(Bucket="bucket", Key="allowed/a.txt"))
    assert code == "SignatureDoesNotMatch"


def test_the_endpoint_answers_only_the_roles_allowed_to_invoke_it():
    with EndpointServer() as server:
        server.serve("dog-breeds", CannedModel())
        server.authorize = invoke_endpoint_authorizer(ROLES, REGION, ACCOUNT)

        def invoke(role: Role, endpoint: str = "dog-breeds"):
            runtime = role.session(REGION).client("sagemaker-runtime", endpoint_url=server.url)
            return runtime.invoke_endpoint(EndpointName=endpoint, Body=b"\xff\xd8\xff", ContentType="image/jpeg")

        assert invoke(READER)["ResponseMetadata"]["HTTPStatusCode"] == 200
        code, message = _denied(lambda: invoke(NOBODY))
        assert code == "AccessDeniedException" and f"sagemaker:InvokeEndpoint on resource: {ENDPOINT_ARN}" in message
        assert _denied(lambda: invoke(READER, "Other"))[0] == "AccessDeniedException"  # ARNs are lower case
        assert server.refusals[0].startswith("AccessDeniedException: User: arn:aws:sts::")


def test_a_checked_request_names_the_role_that_signed_it_or_none_for_the_operator():
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="POST", url="https://api.sagemaker.us-east-1.amazonaws.com/", data=b"{}")
    request.headers["Host"] = "api.sagemaker.us-east-1.amazonaws.com"
    credentials = Credentials(READER.access_key_id, READER.secret_access_key, READER.session_token)
    SigV4Auth(credentials, "sagemaker", REGION).add_auth(request)
    headers = dict(request.headers.items())
    assert ROLES.authorize("POST", "/", headers, b"{}", lambda: []) is READER
    assert ROLES.authorize("POST", "/", {}, b"{}", lambda: []) is None
