"""What `make build` does to the built layer beyond `sam build`: only the AWS models the functions call."""

import json
import shutil
from pathlib import Path

import botocore
import botocore.loaders
import botocore.session
import pytest

from dog_breeds.adapters.clients import AWS_SERVICES, aws_client
from ops.prune_botocore_models import prune_botocore_models


def fake_build(tmp_path, services):
    data = tmp_path / "SharedLayer" / "python" / "botocore" / "data"
    for service in services:
        (data / service / "2020-01-01").mkdir(parents=True)
        model = {"metadata": {"endpointPrefix": f"{service}-prefix"}}
        (data / service / "2020-01-01" / "service-2.json").write_text(json.dumps(model))
    partition = {"partition": "aws", "services": {f"{service}-prefix": {} for service in services}}
    (data / "endpoints.json").write_text(json.dumps({"partitions": [partition], "version": 3}))
    return data


def test_prune_keeps_the_called_services_and_botocores_own_files_and_removes_the_rest(tmp_path):
    # Given a built layer whose botocore has the called services and two others
    data = fake_build(tmp_path, [*AWS_SERVICES, "ec2", "dynamodb"])
    # When make build prunes it
    removed = prune_botocore_models(tmp_path)
    # Then only the called services' models remain, beside botocore's own files (endpoints, partitions)
    assert sorted(path.name for path in removed) == ["dynamodb", "ec2"]
    assert {path.name for path in data.iterdir()} == {*AWS_SERVICES, "endpoints.json"}
    # And endpoints.json keeps only their endpoints
    services = json.loads((data / "endpoints.json").read_text())["partitions"][0]["services"]
    assert sorted(services) == sorted(f"{service}-prefix" for service in AWS_SERVICES)


def client_endpoint(data_path: Path | None, service: str, region: str) -> str:
    session = botocore.session.get_session()
    if data_path is not None:
        loader = botocore.loaders.Loader(extra_search_paths=[str(data_path)], include_default_search_paths=False)
        session.register_component("data_loader", loader)
    client = session.create_client(service, region_name=region, aws_access_key_id="a", aws_secret_access_key="b")
    return client.meta.endpoint_url


def test_pruned_real_botocore_resolves_every_called_service_to_the_same_endpoints(tmp_path):
    # Given a copy of this botocore's data: the called services' models and botocore's own files
    source = Path(botocore.__file__).parent / "data"
    data = tmp_path / "SharedLayer" / "python" / "botocore" / "data"
    data.mkdir(parents=True)
    for entry in source.iterdir():
        if entry.is_file():
            shutil.copy(entry, data / entry.name)
        elif entry.name in AWS_SERVICES | {"ec2"}:
            shutil.copytree(entry, data / entry.name)
    # When make build prunes it (endpoints.json shrinks to a few percent)
    prune_botocore_models(tmp_path)
    assert (data / "endpoints.json").stat().st_size < (source / "endpoints.json").stat().st_size / 10
    # Then each called service resolves to the same URL as with the whole of botocore, across partitions
    for service in sorted(AWS_SERVICES):
        for region in ("us-east-1", "eu-west-1", "cn-north-1", "us-gov-west-1"):
            assert client_endpoint(data, service, region) == client_endpoint(None, service, region), (service, region)


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
