"""What `make build` does to the built layer beyond `sam build`: only the AWS models the functions call."""

import json

import pytest

from dog_breeds.adapters.clients import AWS_SERVICES, aws_client
from ops.prune_botocore_models import prune_botocore_models


def fake_build(tmp_path, services):
    data = tmp_path / "SharedLayer" / "python" / "botocore" / "data"
    for service in services:
        (data / service / "2020-01-01").mkdir(parents=True)
        (data / service / "2020-01-01" / "service-2.json").write_text(json.dumps({"metadata": {}}))
    (data / "endpoints.json").write_text("{}")
    return data


def test_prune_keeps_the_called_services_and_botocores_own_files_and_removes_the_rest(tmp_path):
    # Given a built layer whose botocore has the called services and two others
    data = fake_build(tmp_path, [*AWS_SERVICES, "ec2", "dynamodb"])
    # When make build prunes it
    removed = prune_botocore_models(tmp_path)
    # Then only the called services' models remain, beside botocore's own files (endpoints, partitions)
    assert sorted(path.name for path in removed) == ["dynamodb", "ec2"]
    assert {path.name for path in data.iterdir()} == {*AWS_SERVICES, "endpoints.json"}


def test_prune_refuses_a_botocore_that_lacks_a_called_service(tmp_path):
    # Given a botocore without the sagemaker-runtime model (an old pin, a broken build)
    fake_build(tmp_path, sorted(AWS_SERVICES - {"sagemaker-runtime"}))
    # Then the build stops, naming the service, rather than ship a layer whose predict function cannot start
    with pytest.raises(SystemExit, match="sagemaker-runtime"):
        prune_botocore_models(tmp_path)


def test_a_client_for_a_service_the_build_would_drop_is_refused_naming_the_list():
    # Given code that starts calling a service not declared in AWS_SERVICES
    # Then it fails in the offline tests, saying where to declare it, not later in AWS with UnknownServiceError
    with pytest.raises(ValueError, match="AWS_SERVICES"):
        aws_client("dynamodb")
