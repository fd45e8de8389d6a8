"""`make destroy`'s order and waiting, against fakes that record every call and move through AWS's states.

What must hold (ops/destroy.py's docstring): running jobs are stopped and awaited before anything is deleted (a
stopping job still writes into the bucket); scaling goes before the endpoint (a policy on a deleted endpoint's
variant is left behind), policies before their target; each endpoint is deleted and awaited until SageMaker says
it is gone, and the capture grace passes, before its configs and models go; logs after the endpoints that write
them; the bucket is emptied only when nothing writes into it any more; `sam delete` last. The fakes answer as AWS
does while a job is Stopping or an endpoint Deleting, for a few polls, so a destroy that does not wait deletes
under a writer and fails here. tests/integration/test_destroy.py runs the same code against moto.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from botocore.exceptions import ClientError

from ops import destroy as destroy_module
from ops.destroy import destroy

ENDPOINT, PREFIX, BUCKET = "dog-breed-classifier", "dog-breeds", "artifacts"
POLLS_TO_SETTLE = 2  # how many looks a stopping job or a deleting endpoint takes to finish


def _missing(operation: str, code: str = "ValidationException") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "not found"}}, operation)


@dataclass
class World:
    """One account as the fakes see it; ``journal`` holds every call that changes something, with the states the
    call was made in."""

    jobs: dict[str, dict] = field(default_factory=dict)  # name -> {"kind", "status", "polls"}
    endpoints: dict[str, dict] = field(default_factory=dict)  # name -> {"status", "polls"}
    configs: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    policies: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    alarms: list[str] = field(default_factory=list)
    objects: int = 5
    journal: list[tuple[str, str, dict]] = field(default_factory=list)

    def record(self, call: str, name: str = "") -> None:
        running = sorted(n for n, job in self.jobs.items() if job["status"] in ("InProgress", "Stopping"))
        present = sorted(self.endpoints)
        self.journal.append((call, name, {"running_jobs": running, "endpoints": present}))

    def tick(self) -> None:
        """Time passes between looks: stopping jobs stop, deleting endpoints go."""
        for job in self.jobs.values():
            if job["status"] == "Stopping":
                job["polls"] += 1
                if job["polls"] >= POLLS_TO_SETTLE:
                    job["status"] = "Stopped"
        for name, endpoint in list(self.endpoints.items()):
            if endpoint["status"] == "Deleting":
                endpoint["polls"] += 1
                if endpoint["polls"] >= POLLS_TO_SETTLE:
                    del self.endpoints[name]

    def calls(self, call: str) -> list[int]:
        return [index for index, (made, _, _) in enumerate(self.journal) if made == call]


class FakeSageMaker:
    def __init__(self, world: World) -> None:
        self.world = world

    def _jobs(self, kind: str, name_key: str, status_key: str, key: str, NameContains="", StatusEquals=None, **_):
        self.world.tick()
        jobs = [
            {name_key: name, status_key: job["status"]}
            for name, job in self.world.jobs.items()
            if job["kind"] == kind and NameContains in name and (StatusEquals in (None, job["status"]))
        ]
        return {key: jobs}

    def list_training_jobs(self, **options):
        return self._jobs("training", "TrainingJobName", "TrainingJobStatus", "TrainingJobSummaries", **options)

    def list_hyper_parameter_tuning_jobs(self, **options):
        return self._jobs(
            "tuning",
            "HyperParameterTuningJobName",
            "HyperParameterTuningJobStatus",
            "HyperParameterTuningJobSummaries",
            **options,
        )

    def list_transform_jobs(self, **options):
        return self._jobs("transform", "TransformJobName", "TransformJobStatus", "TransformJobSummaries", **options)

    def _stop(self, name: str) -> None:
        self.world.record("stop_job", name)
        self.world.jobs[name].update(status="Stopping", polls=0)

    def stop_training_job(self, TrainingJobName):
        self._stop(TrainingJobName)

    def stop_hyper_parameter_tuning_job(self, HyperParameterTuningJobName):
        self._stop(HyperParameterTuningJobName)

    def stop_transform_job(self, TransformJobName):
        self._stop(TransformJobName)

    def describe_endpoint(self, EndpointName):
        self.world.tick()
        if EndpointName not in self.world.endpoints:
            raise _missing("DescribeEndpoint")
        return {"EndpointName": EndpointName, "EndpointStatus": self.world.endpoints[EndpointName]["status"]}

    def delete_endpoint(self, EndpointName):
        self.world.record("delete_endpoint", EndpointName)
        self.world.endpoints[EndpointName].update(status="Deleting", polls=0)

    def list_endpoint_configs(self, NameContains="", **_):
        return {"EndpointConfigs": [{"EndpointConfigName": n} for n in self.world.configs if NameContains in n]}

    def delete_endpoint_config(self, EndpointConfigName):
        self.world.record("delete_endpoint_config", EndpointConfigName)
        self.world.configs.remove(EndpointConfigName)

    def list_models(self, NameContains="", **_):
        return {"Models": [{"ModelName": n} for n in self.world.models if NameContains in n]}

    def delete_model(self, ModelName):
        self.world.record("delete_model", ModelName)
        self.world.models.remove(ModelName)


class FakeScaling:
    def __init__(self, world: World) -> None:
        self.world = world

    def describe_scaling_policies(self, **_):
        return {"ScalingPolicies": [{"PolicyName": n, "ScalableDimension": "d"} for n in self.world.policies]}

    def delete_scaling_policy(self, PolicyName, **_):
        self.world.record("delete_scaling_policy", PolicyName)
        self.world.policies.remove(PolicyName)

    def describe_scalable_targets(self, **_):
        return {"ScalableTargets": [{"ScalableDimension": "d", "ResourceId": t} for t in self.world.targets]}

    def deregister_scalable_target(self, ResourceId, **_):
        self.world.record("deregister_scalable_target", ResourceId)
        self.world.targets.remove(ResourceId)


class FakeCloudWatch:
    def __init__(self, world: World) -> None:
        self.world = world

    def describe_alarms(self, **_):
        return {"MetricAlarms": [{"AlarmName": n} for n in self.world.alarms]}

    def delete_alarms(self, AlarmNames):
        self.world.record("delete_alarms", ",".join(AlarmNames))
        self.world.alarms.clear()


class FakeLogs:
    def __init__(self, world: World) -> None:
        self.world = world

    def delete_log_group(self, logGroupName):
        self.world.record("delete_log_group", logGroupName)

    def describe_log_streams(self, **_):
        return {"logStreams": [{"logStreamName": f"{PREFIX}-job/algo-1"}]}

    def delete_log_stream(self, logGroupName, logStreamName):
        self.world.record("delete_log_stream", logStreamName)


class FakeS3:
    def __init__(self, world: World) -> None:
        self.world = world

    def get_paginator(self, _operation):
        world = self.world

        class Pages:
            def paginate(self, Bucket):
                versions = [{"Key": f"k{i}", "VersionId": "v"} for i in range(world.objects)]
                return [{"Versions": versions, "DeleteMarkers": []}]

        return Pages()

    def delete_objects(self, Bucket, Delete):
        self.world.record("empty_bucket", Bucket)
        self.world.objects = 0


class FakeCloudFormation:
    def describe_stacks(self, StackName):
        parameters = [
            {"ParameterKey": "EndpointName", "ParameterValue": ENDPOINT},
            {"ParameterKey": "JobNamePrefix", "ParameterValue": PREFIX},
        ]
        return {
            "Stacks": [
                {"Parameters": parameters, "Outputs": [{"OutputKey": "ArtifactsBucketName", "OutputValue": BUCKET}]}
            ]
        }


@pytest.fixture
def world(monkeypatch) -> World:
    monkeypatch.setattr(destroy_module.time, "sleep", lambda _seconds: None)
    return World(
        jobs={
            f"{PREFIX}-train-1": {"kind": "training", "status": "InProgress", "polls": 0},
            f"{PREFIX}-tune-1": {"kind": "tuning", "status": "InProgress", "polls": 0},
            f"{PREFIX}-golden-abc-123": {"kind": "transform", "status": "InProgress", "polls": 0},
            f"{PREFIX}-old": {"kind": "training", "status": "Completed", "polls": 0},
        },
        endpoints={
            ENDPOINT: {"status": "InService", "polls": 0},
            f"{ENDPOINT}-serverless": {"status": "InService", "polls": 0},
        },
        configs=[f"{ENDPOINT}-aaa", f"{ENDPOINT}-bbb", "someone-elses-config"],
        models=[f"{ENDPOINT}-aaa", f"{PREFIX}-golden-0123456789ab", "someone-elses-model"],
        policies=["target-tracking"],
        targets=[f"endpoint/{ENDPOINT}/variant/AllTraffic"],
        alarms=[f"TargetTracking-endpoint/{ENDPOINT}/variant/AllTraffic-AlarmHigh"],
    )


def _destroy(world: World) -> list[str]:
    said: list[str] = []
    clients = {
        "cloudformation": FakeCloudFormation(),
        "sagemaker": FakeSageMaker(world),
        "application-autoscaling": FakeScaling(world),
        "cloudwatch": FakeCloudWatch(world),
        "logs": FakeLogs(world),
        "s3": FakeS3(world),
    }

    def sam_delete(stack: str) -> int:
        world.record("sam_delete", stack)
        return 0

    assert destroy(clients, "stack", sam_delete, said.append, capture_grace_seconds=0, poll_seconds=0) == 0
    return said


def test_running_jobs_are_stopped_and_awaited_before_anything_is_deleted(world):
    _destroy(world)
    stops = world.calls("stop_job")
    assert sorted(world.journal[i][1] for i in stops) == [
        f"{PREFIX}-golden-abc-123",
        f"{PREFIX}-train-1",
        f"{PREFIX}-tune-1",
    ]
    first_deletion = min(i for i, (call, _, _) in enumerate(world.journal) if call != "stop_job")
    assert max(stops) < first_deletion
    assert world.journal[first_deletion][2]["running_jobs"] == [], "a deletion was made while a job still ran"
    assert world.jobs[f"{PREFIX}-old"]["status"] == "Completed", "finished jobs stay as history"


def test_scaling_goes_before_the_endpoint_policies_before_their_target_then_the_alarms(world):
    _destroy(world)
    policy, target = world.calls("delete_scaling_policy"), world.calls("deregister_scalable_target")
    alarms, endpoints = world.calls("delete_alarms"), world.calls("delete_endpoint")
    assert policy and target and alarms and endpoints
    assert max(policy) < min(target) < min(alarms) < min(endpoints)


def test_each_endpoint_is_gone_before_its_configs_and_models_and_the_logs(world):
    _destroy(world)
    configs, models = world.calls("delete_endpoint_config"), world.calls("delete_model")
    logs, endpoints = world.calls("delete_log_group"), world.calls("delete_endpoint")
    assert [world.journal[i][1] for i in endpoints] == [f"{ENDPOINT}-serverless", ENDPOINT]
    assert world.journal[endpoints[1]][2]["endpoints"] == [ENDPOINT], "the serverless one was awaited first"
    for index in [*configs, *models, *logs]:
        assert world.journal[index][2]["endpoints"] == [], f"{world.journal[index][:2]} while an endpoint still existed"
    assert sorted(world.journal[i][1] for i in models) == [f"{ENDPOINT}-aaa", f"{PREFIX}-golden-0123456789ab"]
    assert world.configs == ["someone-elses-config"] and world.models == ["someone-elses-model"]


def test_the_bucket_is_emptied_after_every_writer_is_gone_and_sam_delete_comes_last(world):
    _destroy(world)
    emptied, deleted = world.calls("empty_bucket"), world.calls("sam_delete")
    writers = [i for i, (call, _, _) in enumerate(world.journal) if call in ("delete_endpoint", "delete_log_group")]
    assert emptied and max(writers) < min(emptied) and world.objects == 0
    assert deleted == [len(world.journal) - 1]


def test_a_job_that_never_stops_stops_the_destroy_before_it_deletes_anything(world, monkeypatch):
    clock = iter(range(0, 100_000, 600))
    monkeypatch.setattr(destroy_module.time, "monotonic", lambda: next(clock))
    world.tick = lambda: None  # nothing settles
    with pytest.raises(TimeoutError, match="run make destroy again"):
        _destroy(world)
    assert {call for call, _, _ in world.journal} == {"stop_job"}


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "Operation")


def test_a_listing_is_read_page_after_page():
    asked: list[dict] = []

    class Pages:
        def list_models(self, **parameters):
            asked.append(dict(parameters))
            return {"Models": [len(asked)], **({"NextToken": "t"} if len(asked) < 3 else {})}

    assert list(destroy_module._pages(Pages(), "list_models", "Models", NameContains="p")) == [1, 2, 3]
    assert asked == [
        {"NameContains": "p"},
        {"NameContains": "p", "NextToken": "t"},
        {"NameContains": "p", "NextToken": "t"},
    ]


def test_missing_log_groups_are_nothing_to_delete_and_other_refusals_stop_the_destroy():
    class Logs:
        def __init__(self, code):
            self.code, self.deleted = code, []

        def delete_log_group(self, logGroupName):
            raise _client_error(self.code)

        def describe_log_streams(self, **_):
            raise _client_error("ResourceNotFoundException")

        def delete_log_stream(self, **_):
            self.deleted.append(_)

    said: list[str] = []
    quiet = Logs("ResourceNotFoundException")
    destroy_module.remove_sagemaker_logs(quiet, ENDPOINT, PREFIX, said.append)
    assert said == [] and quiet.deleted == []
    with pytest.raises(ClientError, match="AccessDeniedException"):
        destroy_module.remove_sagemaker_logs(Logs("AccessDeniedException"), ENDPOINT, PREFIX, said.append)


def test_a_bucket_is_emptied_a_thousand_keys_at_a_time_delete_markers_included():
    batches: list[int] = []

    class S3:
        def get_paginator(self, _operation):
            class Pages:
                def paginate(self, Bucket):
                    versions = [{"Key": f"k{i}", "VersionId": "v"} for i in range(1500)]
                    markers = [{"Key": "gone", "VersionId": "m"}]
                    return [{"Versions": versions, "DeleteMarkers": markers}, {}]

            return Pages()

        def delete_objects(self, Bucket, Delete):
            assert Delete["Quiet"] is True
            batches.append(len(Delete["Objects"]))

    said: list[str] = []
    assert destroy_module.empty_bucket(S3(), BUCKET, said.append) == 1501
    assert batches == [1000, 501]
    assert said == [f"emptied s3://{BUCKET} (1501 object versions and delete markers)"]


def test_a_stack_that_keeps_access_logs_has_that_bucket_emptied_before_sam_delete(world):
    emptied: list[str] = []

    class WithAccessLogs(FakeCloudFormation):
        def describe_stacks(self, StackName):
            answer = super().describe_stacks(StackName)
            answer["Stacks"][0]["Outputs"].append({"OutputKey": "AccessLogsBucketName", "OutputValue": "logs-bucket"})
            return answer

    class S3(FakeS3):
        def delete_objects(self, Bucket, Delete):
            emptied.append(Bucket)
            super().delete_objects(Bucket, Delete)

    clients = {
        "cloudformation": WithAccessLogs(),
        "sagemaker": FakeSageMaker(world),
        "application-autoscaling": FakeScaling(world),
        "cloudwatch": FakeCloudWatch(world),
        "logs": FakeLogs(world),
        "s3": S3(world),
    }
    world.objects = 3
    said: list[str] = []
    destroy(clients, "stack", lambda stack: world.record("sam_delete", stack) or 0, said.append, 0, 0)
    assert emptied == [BUCKET] and said[-1] == "emptied s3://logs-bucket (0 object versions and delete markers)"
    assert world.journal[-1][:2] == ("sam_delete", "stack")
    assert destroy_module.access_logs_bucket(WithAccessLogs(), "stack") == "logs-bucket"
    assert destroy_module.access_logs_bucket(FakeCloudFormation(), "stack") is None


@pytest.mark.parametrize(
    ("arguments", "message"),
    [(["--capture-grace-seconds", "-1"], "must be 0 or more"), (["--poll-seconds", "0"], "must be more than 0")],
)
def test_bad_timings_are_refused_with_what_is_accepted(arguments, message, capsys):
    with pytest.raises(SystemExit) as refused:
        destroy_module.main(["--yes", *arguments])
    assert refused.value.code == 2 and message in capsys.readouterr().err


def test_nothing_is_deleted_without_a_yes_and_a_failure_says_where_it_stopped(monkeypatch, capsys):
    monkeypatch.setattr("builtins.input", lambda question: "n")
    assert destroy_module.main([]) == 1 and "nothing deleted" in capsys.readouterr().out

    def stops(*arguments, **options):
        raise TimeoutError("stopping 1 job(s) did not happen within 3600 s; run make destroy again")

    monkeypatch.setattr(destroy_module, "destroy", stops)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    assert destroy_module.main(["--yes"]) == 2
    assert "destroy stopped: stopping 1 job(s)" in capsys.readouterr().err
