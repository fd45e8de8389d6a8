"""The demo path, offline: train -> deploy -> scale -> predict, then a blue/green update under traffic."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request

import pytest

from offline_stack.api_client import post_image
from offline_stack.demo import main as demo_main
from offline_stack.demo_steps import (
    DEMO_HYPERPARAMETERS,
    OXFORD_PHOTOS,
    QUICK_HYPERPARAMETERS,
    dataset_samples,
    run_demo,
    sample_images,
)
from offline_stack.stack import OfflineStack
from offline_stack.synthetic_images import CLASS_FOLDERS, write_image_folder
from ops.evaluate_model import main as evaluate_main
from reliability.served_stack import deploy, write_artifact
from tests.support.training import plotted_series


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    lines: list[str] = []
    with OfflineStack(tmp_path_factory.mktemp("offline"), log=lines.append, quiet_functions=True) as stack:
        result = run_demo(stack, None, DEMO_HYPERPARAMETERS, say=lines.append)
        yield stack, result, lines
    # (closing the stack is checked in test_closing_the_stack_stops_everything)


def test_the_answers_come_from_the_model_trained_in_this_run(demo):
    stack, result, lines = demo
    generated = [p for p in result.predictions if not p.image.startswith("photo ")]
    assert len(generated) == len(CLASS_FOLDERS)
    assert all(prediction.status == 200 for prediction in result.predictions)
    # A frozen ImageNet backbone and a head trained for seconds: most held-out images right, each in the top 2
    right = [p.answer["predictions"][0]["breed"] == p.expected for p in generated]
    assert sum(right) >= len(generated) - 1, [p.answer for p in generated]
    assert all(p.expected in [q["breed"] for q in p.answer["predictions"][:2]] for p in generated)
    # Then the starter model answered the real photos: a breed for the dog, "not a dog" for the cat
    photos = {p.image: p.answer["predictions"][0]["breed"] for p in result.predictions if p.image.startswith("photo ")}
    assert photos["photo cat.70.jpg"] == "not a dog" and photos["photo dog.128.jpg"] != "not a dog"
    # The endpoint served the artifact the local executor uploaded for this run's job
    job = result.model_artifacts.split("/training-output/")[1].split("/")[0]
    assert job == result.training_job_name
    # Two host processes ran (rank 1 trains silently: only rank 0 reports)
    job_dir = stack.work_dir / "jobs" / result.training_job_name
    assert result.hosts == 2 and (job_dir / "algo-2/training.log").is_file()
    assert any("[algo-1] #metrics# test_loss=" in line for line in lines)  # a metric line, marked
    assert plotted_series(stack.work_dir / "training_curves.svg") == 4  # loss and accuracy, train and valid
    # The pipeline's own definition ran it: each state said as it was entered
    for state in ("StartTraining", "JudgeCandidate", "DeployEndpoint", "RegisterAutoscaling", "Done"):
        assert f"      -> {state}" in lines


def test_the_tuning_step_extracts_the_features_once_and_every_trial_hits_the_cache(demo):
    stack, result, lines = demo
    extraction, *trials = result.trials
    assert extraction.learning_rate is None and extraction.feature_cache.startswith("extracting into feature-cache/")
    assert extraction.job_said.startswith("feature cache miss")  # it computed them, once
    folder = extraction.feature_cache.split(" ")[-1]
    assert [t.learning_rate for t in trials] == [0.001, 0.003, 0.01, 0.03]
    for trial in trials:
        assert trial.feature_cache == f"hit {folder}"  # start-training found them in S3 and gave them as a channel
        assert trial.job_said.startswith("feature cache hit")  # and the job used them: its backbone did not run
        assert trial.valid_accuracy is not None
    keys = [o["Key"] for o in stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix=folder)["Contents"]]
    assert keys == [f"{folder}{extraction.job_name}/output/model.tar.gz"]
    assert any("start-training found hit" in line for line in lines)
    report = (stack.work_dir / "report.md").read_text()
    assert "## Tuning on cached features" in report and report.count("| hit / feature cache hit") == 4


def test_the_report_says_what_was_trained_how_it_went_and_that_the_data_was_generated(demo):
    stack, result, _ = demo
    report = (stack.work_dir / "report.md").read_text()
    metrics = json.loads(
        (stack.work_dir / "jobs" / result.training_job_name / "algo-1/output/data/metrics.json").read_text()
    )
    assert "**Generated data.**" in report
    assert f"test accuracy **{metrics['test']['test_accuracy']:.4f}**" in report
    assert "| learning_rate | 0.003 |" in report and "| architecture | efficientnet_lite0 |" in report
    epochs = [line for line in report.splitlines() if re.match(r"\| \d+( \(best\))? \| \d", line)]
    assert len(epochs) == len(metrics["history"]) and f"| {metrics['best_epoch']} (best) |" in report
    assert "![training curves](training_curves.svg)" in report and "release gate: approved" in report
    assert "{" not in report.split("## Predictions")[0], "no raw Python dicts"
    # And it says how the starter model does on real labelled photos, when they are beside the checkout
    measured = result.starter_on_photos
    if OXFORD_PHOTOS.is_dir():
        assert measured and measured["known"] >= 200, measured
        assert f"| **{measured['top1']:.1%}** | {measured['top5']:.1%} |" in report
        assert measured["top1"] >= 0.7, "the starter model knows these breeds (80.4 % measured, docs/training.md)"
    else:
        assert measured is None and "Not measured: no real labelled photos" in report


def test_a_data_dir_without_train_and_valid_gets_one_line_and_keeps_the_previous_report(tmp_path, capsys):
    (tmp_path / "report.md").write_text("the previous report")
    (tmp_path / "photos").mkdir()
    code = demo_main(["--work-dir", str(tmp_path), "--data-dir", str(tmp_path / "photos")])
    error = capsys.readouterr().err.strip()
    assert code == 2 and "needs train/ and valid/" in error and len(error.splitlines()) == 1
    assert (tmp_path / "report.md").read_text() == "the previous report"


@pytest.mark.parametrize(
    "value, named",
    [
        ("{epochs: 5}", "not JSON"),
        ("[5]", "JSON object"),
        ('{"epochs": 0}', "--epochs"),
        ('{"architecture": "vgg"}', "--architecture"),
        ('{"epoch": 5}', "unknown hyperparameter(s) ['epoch']"),
    ],
)
def test_bad_demo_hyperparameters_get_one_line_and_keep_the_previous_report(
    value, named, tmp_path, monkeypatch, capsys
):
    # Given a previous run's report
    (tmp_path / "report.md").write_text("the previous report")
    monkeypatch.setenv("DEMO_HYPERPARAMETERS", value)
    # When the demo is started with hyperparameters it cannot train with
    code = demo_main(["--work-dir", str(tmp_path)])
    # Then it says what is wrong in one line, starts nothing, and the previous report is still there
    error = capsys.readouterr().err.strip()
    assert code == 2 and named in error and len(error.splitlines()) == 1
    assert (tmp_path / "report.md").read_text() == "the previous report"


def test_every_client_talked_to_the_loopback_servers(demo):
    stack, result, _ = demo
    assert stack.api.requests >= len(CLASS_FOLDERS)
    assert stack.runtime.invocations >= len(CLASS_FOLDERS)
    for url in (stack.api.url, stack.runtime.url, stack.control_plane.url):
        assert url.startswith("http://127.0.0.1:")
    sagemaker = stack.sagemaker
    assert sagemaker.describe_training_job(TrainingJobName=result.training_job_name)["TrainingJobName"]
    targets = stack.control_plane.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="sagemaker"
    )["ScalableTargets"]
    assert targets[0]["ResourceId"] == result.scaling["resource_id"]


def test_a_second_model_replaces_the_first_without_a_failed_request(demo):
    stack, result, _ = demo
    statuses: list[int] = []
    stop = threading.Event()
    _, image, content_type, _ = sample_images(1)[0]

    def keep_asking():
        while not stop.is_set():
            statuses.append(post_image(stack.api.url, image, content_type, sign=stack.api.sign)[0])

    caller = threading.Thread(target=keep_asking)
    caller.start()
    try:
        # Given a second model, trained in this run with other hyperparameters
        second_hyperparameters = {**QUICK_HYPERPARAMETERS, "epochs": 2, "seed": 7}
        started = stack.invoke(
            "StartTrainingFunction",
            {"hyperparameters": second_hyperparameters, "instance_count": 1},
        )
        assert stack.run_training_job(started["training_job_name"]).succeeded
        # When the gate approves it and it is deployed to the live endpoint
        package = stack.register_job_model(started["training_job_name"])
        deployment = stack.invoke("DeployEndpointFunction", {"model_package_arn": package})
        changed = stack.settle_endpoints()
    finally:
        stop.set()
        caller.join()
    # Then the endpoint was updated in place and every request during the switch was answered
    assert deployment["action"] == "updated" and changed == [deployment["endpoint_name"]]
    endpoint = stack.sagemaker.describe_endpoint(EndpointName=deployment["endpoint_name"])
    assert endpoint["EndpointConfigName"] == deployment["endpoint_config_name"]
    assert len(statuses) > 5 and set(statuses) == {200}


def _refuses_connections(url: str) -> bool:
    try:
        urllib.request.urlopen(url + "/ping", timeout=2)  # noqa: S310 (loopback)
    except urllib.error.HTTPError:
        return False  # something answered (moto answers /ping with 404): it is still running
    except urllib.error.URLError as error:
        return isinstance(error.reason, ConnectionRefusedError)
    return False


def test_closing_the_stack_stops_everything_even_when_the_block_fails(tmp_path):
    with (
        pytest.raises(RuntimeError, match="the user's code failed"),
        OfflineStack(tmp_path, log=lambda line: None, quiet_functions=True) as stack,
    ):
        # Given every kind of child the stack starts: a model container, the API with its execution
        # environments, and the host processes of a training job in progress
        deploy(stack, write_artifact(tmp_path / "artifact"), "model-a")
        api = stack.open_api()
        data = write_image_folder(tmp_path / "data", {"train": 30, "valid": 10, "test": 10})
        for path in sorted(p for p in data.rglob("*") if p.is_file()):
            stack.s3.upload_file(str(path), stack.bucket, "data/" + path.relative_to(data).as_posix())
        job = stack.invoke(
            "StartTrainingFunction",
            {
                "instance_count": 2,
                "hyperparameters": {
                    "epochs": 50,
                    "architecture": "small_cnn",
                    "pretrained": False,
                    "freeze-backbone": False,
                    "image-size": 32,
                },
            },
        )
        threading.Thread(target=stack.executor.run, args=(job["training_job_name"],), daemon=True).start()
        deadline = time.monotonic() + 60
        while len(stack.executor.running) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        children = [
            stack.endpoints.container("dog-breed-classifier").process,
            *stack.executor.running,
        ]
        environments = api.pool.environments
        urls = [
            stack.runtime.url,
            stack.control_plane.url,
            api.url,
            stack.endpoints.container("dog-breed-classifier").url,
        ]
        assert len(children) == 3 and environments and all(_refuses_connections(url) is False for url in urls)
        # When the code inside the with-block fails
        raise RuntimeError("the user's code failed")
    # Then no server answers any more and no child process is left
    assert all(_refuses_connections(url) for url in urls)
    assert all(child.poll() is not None for child in children)
    assert not any(environment.alive for environment in environments)


def test_with_a_users_data_set_the_demo_asks_about_its_held_out_images(tmp_path):
    # Given an ImageFolder data set of the user's (here generated, in the dogImages layout)
    data_dir = write_image_folder(tmp_path / "dogImages", {"train": 2, "valid": 1, "test": 1}, classes=3)
    # Then the demo's questions are one test image per class, expecting that class's breed name
    samples = dataset_samples(data_dir)
    assert [(label.split("/")[1], expected) for label, _, _, expected in samples] == [
        ("001.Affenpinscher", "Affenpinscher"),
        ("002.Afghan_hound", "Afghan hound"),
        ("003.Airedale_terrier", "Airedale terrier"),
    ]
    assert all(content_type == "image/jpeg" and image[:3] == b"\xff\xd8\xff" for _, image, content_type, _ in samples)


def test_a_data_dir_without_the_splits_is_refused_before_anything_starts(tmp_path, capsys):
    from offline_stack.demo import main

    assert main(["--data-dir", str(tmp_path), "--work-dir", str(tmp_path / "work")]) == 2
    assert "needs train/ and valid/" in capsys.readouterr().err
    assert not (tmp_path / "work").exists()


def test_make_evaluate_measures_the_demo_trained_model_through_its_serving_code(demo, tmp_path):
    # Given the model this run trained (its artifact, as the registry recorded it) and held-out images it never saw
    stack, result, _ = demo
    bucket, _, key = result.model_artifacts.removeprefix("s3://").partition("/")
    artifact = tmp_path / "model.tar.gz"
    stack.s3.download_file(bucket, key, str(artifact))
    held_out = write_image_folder(tmp_path / "images", {"held-out": 3}, seed=2027) / "held-out"
    # When make evaluate measures it
    assert evaluate_main(["--model", str(artifact), "--data-dir", str(held_out), "--output", str(tmp_path / "r")]) == 0
    # Then the report's figures are the per-photo answers' own, counted again here
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    answers = report["answers"]
    assert report["photos"] == report["known"] == len(answers) == 3 * len(CLASS_FOLDERS)
    right = [a["predictions"][0]["breed"] == a["expected"] for a in answers]
    assert report["top1"] == pytest.approx(sum(right) / len(answers))
    assert report["top1"] >= 0.75, answers  # the demo model tells its generated breeds apart
    for plot in ("reliability.png", "confusion.png"):
        assert (tmp_path / "r" / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "top-1" in (tmp_path / "r" / "report.md").read_text()
