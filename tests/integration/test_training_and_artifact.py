"""Real training on generated data: 2 SageMaker hosts on loopback, the artifact, and the endpoint serving it."""

from __future__ import annotations

import base64
import io
import json
import os
import random
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from breed_classifier.metrics import METRIC_DEFINITIONS, OBJECTIVE_METRIC
from offline_stack.container_processes import ContainerModel, ContainerProcess
from offline_stack.endpoint_server import ModelFailure
from offline_stack.synthetic_images import CLASS_FOLDERS, class_image, encoded_image, write_image_folder
from reliability.leaks import leaks
from tests.conftest import ENDPOINT_NAME, load_event, response_json
from tests.support.training import FAST_HYPERPARAMETERS, plotted_series, run_entry_point, run_sagemaker_hosts

CLASSES = 4


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("data"), {"train": 40, "valid": 12, "test": 12}, classes=CLASSES)


@pytest.fixture(scope="module")
def two_host_run(dataset, tmp_path_factory):
    """train.py as 2 SageMaker hosts, with the original one-channel layout (``training``)."""
    return run_sagemaker_hosts(tmp_path_factory.mktemp("job"), {"training": dataset}, hosts=2)


@pytest.fixture(scope="module")
def untarred_artifact(two_host_run, tmp_path_factory):
    """The model directory tarred as SageMaker packs model.tar.gz, then unpacked somewhere else."""
    archive = tmp_path_factory.mktemp("s3") / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(two_host_run[0].model_dir, arcname=".")
    target = tmp_path_factory.mktemp("opt-ml-model")
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target


@pytest.fixture(scope="module")
def container(untarred_artifact):
    with ContainerProcess(untarred_artifact) as process:
        yield ContainerModel(process.url)


def test_two_hosts_train_together_and_only_rank_0_writes(two_host_run):
    main, other = two_host_run
    assert main.returncode == 0, main.output
    assert other.returncode == 0, other.output
    assert "2 process(es)" in main.output
    assert sorted(p.name for p in main.model_dir.iterdir()) == ["code", "labels.json", "model.pt", "model_config.json"]
    assert (main.model_dir / "code/inference.py").is_file()
    assert (main.model_dir / "code/breed_classifier/preprocessing.py").is_file()
    assert (main.output_data_dir / "metrics.json").is_file()
    assert plotted_series(main.output_data_dir / "training_curves.svg") == 4  # loss and accuracy, train and valid
    # Rank 1 trained (it took part in every all-reduce) but wrote nothing
    assert not other.model_dir.exists() and not other.output_data_dir.exists()


def test_the_model_learns_well_beyond_chance(two_host_run):
    report = json.loads((two_host_run[0].output_data_dir / "metrics.json").read_text())
    assert report["test"]["test_accuracy"] >= 0.8  # chance is 1 / 4
    assert report["classes"] == list(CLASS_FOLDERS[:CLASSES])
    assert len(report["history"]) >= 2  # more than one epoch ran


def test_throughput_is_reported_every_epoch_without_debugger(two_host_run):
    # Images per second over both hosts, step time and data-loader wait: observable without the profiler
    history = json.loads((two_host_run[0].output_data_dir / "metrics.json").read_text())["history"]
    for row in history:
        assert row["train_images_per_second"] > 0 and row["train_step_seconds"] > 0
        assert 0 <= row["train_data_wait_seconds"] < 60


def test_metric_lines_are_read_by_the_regexes_sagemaker_is_given(two_host_run):
    found = {d["Name"] for d in METRIC_DEFINITIONS if re.search(d["Regex"], two_host_run[0].output)}
    assert found == {d["Name"] for d in METRIC_DEFINITIONS}
    assert OBJECTIVE_METRIC in found


def test_artifact_labels_are_breed_names(untarred_artifact):
    labels = json.loads((untarred_artifact / "labels.json").read_text())
    assert labels[1] == {"class_index": 1, "folder": "002.Afghan_hound", "breed": "Afghan hound"}


def test_served_artifact_classifies_new_generated_images(container):
    rng = random.Random(12345)  # images the model never saw
    correct = 0
    trials = 0
    for class_index in range(CLASSES):
        for _ in range(5):
            body = encoded_image(class_image(class_index, rng), "JPEG")
            answer, content_type = container.invoke(body, "image/jpeg", "application/json", "top_k=3")
            predictions = json.loads(answer)["predictions"]
            assert content_type.startswith("application/json") and len(predictions) == 3
            correct += predictions[0]["class_index"] == class_index
            trials += 1
    assert correct / trials >= 0.75


def _image_variants() -> dict[str, tuple[bytes, str]]:
    rng = random.Random(5)
    base = class_image(2, rng, 64)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    rotated = io.BytesIO()
    base.save(rotated, "JPEG", exif=exif.tobytes())
    sixteen_bit = Image.fromarray(np.asarray(base.convert("L"), dtype=np.uint16) * 257)  # mode I;16
    return {
        "jpeg": (encoded_image(base, "JPEG"), "image/jpeg"),
        "png": (encoded_image(base, "PNG"), "image/png"),
        "grayscale": (encoded_image(base.convert("L"), "PNG"), "image/png"),
        "rgba": (encoded_image(base.convert("RGBA"), "PNG"), "image/png"),
        "cmyk": (encoded_image(base.convert("CMYK"), "JPEG"), "image/jpeg"),
        "exif-rotated": (rotated.getvalue(), "image/jpeg"),
        "16-bit-png": (encoded_image(sixteen_bit, "PNG"), "image/png"),
        "x-image": (encoded_image(base, "JPEG"), "application/x-image"),
    }


@pytest.mark.parametrize("variant", sorted(_image_variants()))
def test_every_image_kind_is_served(variant, container):
    body, content_type = _image_variants()[variant]
    answer, _ = container.invoke(body, content_type, "application/json", "")
    predictions = json.loads(answer)["predictions"]
    assert len(predictions) == 4  # top_k defaults to 5, and there are 4 classes
    probabilities = [p["probability"] for p in predictions]
    assert probabilities == sorted(probabilities, reverse=True) and 0.99 <= sum(probabilities) <= 1.0001
    # The conversion kept the picture: the same class as the plain image (a class-2 image, seen upright)
    assert predictions[0]["class_index"] == 2


def test_json_request_with_top_k(container):
    body, _ = _image_variants()["png"]
    document = json.dumps({"image": base64.b64encode(body).decode(), "top_k": 1})
    answer, _ = container.invoke(document.encode(), "application/json", "application/json", "")
    assert len(json.loads(answer)["predictions"]) == 1


def _huge_png() -> bytes:
    return encoded_image(Image.new("1", (8000, 6000)), "PNG")  # 48 Mpx in a few kB: a decompression bomb


@pytest.mark.parametrize(
    ("body", "content_type", "attributes", "status", "words"),
    [
        (b"definitely not an image", "image/jpeg", "", 422, "not a decodable JPEG or PNG"),
        (b"", "image/png", "", 422, "empty"),
        ("truncated", "image/jpeg", "", 422, "not a decodable JPEG or PNG"),
        ("gif", "image/jpeg", "", 422, "GIF image; send a JPEG or PNG"),
        ("huge", "image/png", "", 413, "pixels"),
        (b"GIF89a", "image/gif", "", 415, "image/jpeg, image/png"),
        (b'{"picture": 1}', "application/json", "", 400, '"image"'),
        (b'{"image": "not base64!"}', "application/json", "", 400, "base64"),
        (b"[" * 5000, "application/json", "", 400, "not JSON"),
        (b'{"image": "\xff\xfe"}', "application/json", "", 400, "not UTF-8"),
        ("png", "image/png", "top_k=21", 400, "top_k"),
        ("png", "image/png", "top_k=\u0663".encode().decode("unicode_escape"), 400, "top_k"),
    ],
)
def test_bad_inputs_get_clear_refusals(body, content_type, attributes, status, words, container):
    # Given a refusal of each kind inference.py makes, sent through the AWS toolkit's handler service
    body = {
        "truncated": lambda: _image_variants()["jpeg"][0][:300],
        "huge": _huge_png,
        "gif": lambda: encoded_image(class_image(1, random.Random(3)), "GIF"),
        "png": lambda: _image_variants()["png"][0],
    }.get(body, lambda: body)()
    with pytest.raises(ModelFailure) as refusal:
        container.invoke(body, content_type, "application/json", attributes)
    # Then the status and a JSON error body that says why, with no stack trace (the toolkit would add one)
    assert refusal.value.status == status
    error = json.loads(refusal.value.message)["error"]
    assert words in error["message"] and error["code"]
    assert not leaks(refusal.value.message)


def test_prediction_path_with_the_real_model(container, predict_function, endpoint_server):
    # Given the endpoint serving the artifact trained above (not a canned answer)
    endpoint_server.serve(ENDPOINT_NAME, container)
    # When the sample events (a class-0 JPEG and a class-2 PNG) go through the predict function
    with predict_function() as function:
        jpeg = response_json(function.invoke(load_event("predict-jpeg.json")))
        png = response_json(function.invoke(load_event("predict-png.json")))
        refused = function.invoke(load_event("predict-not-an-image.json"))
    # Then the API answers with breed names from the trained model
    assert jpeg["predictions"][0]["breed"] == "Affenpinscher"
    assert png["predictions"][0]["breed"] == "Airedale terrier"
    assert len(jpeg["predictions"]) == 3  # the event asks for top_k=3
    assert refused["statusCode"] == 422


def test_model_container_answers_422_through_sagemaker_runtime_as_a_client_error(
    container, predict_function, endpoint_server
):
    # The endpoint's 422 (garbage that passed the function's magic-byte check) reaches the caller as 422
    endpoint_server.serve(ENDPOINT_NAME, container)
    event = load_event("predict-jpeg.json")
    event["body"] = base64.b64encode(b"\xff\xd8\xff" + b"\x00" * 100).decode()
    with predict_function() as function:
        response = function.invoke(event)
    assert response["statusCode"] == 422
    assert "Traceback" not in response["body"]


def ec2train(dataset, workdir, *arguments: str, **options):
    """``train_outside_sagemaker.py`` on ``dataset``, writing the model and reports under ``workdir``."""
    paths = ["--data-dir", str(dataset), "--model-dir", str(workdir / "model"), "--output-dir", str(workdir / "output")]
    return run_entry_point("train_outside_sagemaker.py", *paths, *arguments, **options)


def test_ec2_entry_point_trains_on_the_same_data(dataset, tmp_path):
    result = ec2train(dataset, tmp_path, *FAST_HYPERPARAMETERS, "--epochs", "2")
    assert result.returncode == 0, result.stderr
    assert "test_accuracy=" in result.stdout
    assert (tmp_path / "model/model.pt").is_file()
    # It learned: test accuracy well above the 1-in-4 of guessing
    metrics = json.loads((tmp_path / "output/metrics.json").read_text())
    assert metrics["test"]["test_accuracy"] >= 0.5, metrics["test"]


def test_an_interrupted_run_resumes_from_its_checkpoint(dataset, tmp_path):
    # Given a run that stopped after 2 epochs (as a spot interruption would), leaving its checkpoint
    def train(epochs: str):
        checkpoints = ["--checkpoint-dir", str(tmp_path / "checkpoints")]
        return ec2train(dataset, tmp_path, *checkpoints, *FAST_HYPERPARAMETERS, "--epochs", epochs, "--patience", "10")

    assert train("2").returncode == 0
    # When the job runs again with its full epoch budget
    resumed = train("3")
    # Then it continues after epoch 2 instead of starting over, and keeps the earlier epochs' history
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from the checkpoint after epoch 2" in resumed.stdout
    assert "epoch=1 " not in resumed.stdout and "epoch=3 " in resumed.stdout
    assert [row["epoch"] for row in json.loads((tmp_path / "output/metrics.json").read_text())["history"]] == [1, 2, 3]


def test_a_spot_job_interrupted_after_an_epoch_resumes_from_its_checkpoints_folder(dataset, tmp_path):
    # Given a SageMaker job with a CheckpointConfig: its checkpoints folder exists (SageMaker syncs it with S3)
    checkpoints = tmp_path / "opt-ml-checkpoints"
    checkpoints.mkdir()
    env = {"CHECKPOINT_LOCAL_PATH": str(checkpoints)}
    # When the first attempt is interrupted after its first epoch (stopped there, as a spot reclaim would)
    first = run_sagemaker_hosts(tmp_path / "first", {"training": dataset}, 1, ("--epochs", "1"), env)[0]
    assert first.returncode == 0, first.output
    assert (checkpoints / "checkpoint.pt").is_file()
    # And SageMaker runs the job again on a new instance with the same checkpoints and the full budget
    second = run_sagemaker_hosts(tmp_path / "second", {"training": dataset}, 1, ("--epochs", "3"), env)[0]
    # Then it resumes after epoch 1 and finishes with 3 epochs in all, not 1 + 3
    assert second.returncode == 0, second.output
    assert "resuming from the checkpoint after epoch 1" in second.output
    history = json.loads((second.output_data_dir / "metrics.json").read_text())["history"]
    assert [row["epoch"] for row in history] == [1, 2, 3]


def test_pretrained_weights_offline_fail_with_a_clear_message(dataset, tmp_path):
    # Given no reachable network (a proxy on a closed loopback port) and an empty weights cache
    env = {
        "PATH": "/usr/bin:/bin",
        "TORCH_HOME": str(tmp_path / "torch"),
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
        "OMP_NUM_THREADS": "1",
    }
    pretrained = ["--architecture", "resnet18", "--pretrained", "true", "--epochs", "1", "--num-workers", "0"]
    result = ec2train(dataset, tmp_path, *pretrained, env=env, timeout=300)
    assert result.returncode == 2
    assert "could not download the ImageNet weights for resnet18" in result.stderr
    assert "--pretrained false" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--learning-rate", "-1"], "must be greater than 0"),
        (["--pretrained", "maybe"], "is not a boolean"),
        (["--architecture", "vgg"], "invalid choice"),
    ],
)
def test_bad_training_arguments_are_refused(args, words, tmp_path):
    result = run_entry_point("train.py", *args, env={"PATH": "/usr/bin:/bin", "SM_CHANNEL_TRAINING": str(tmp_path)})
    assert result.returncode == 2 and words in result.stderr


def test_missing_data_is_refused_with_the_layouts_accepted(tmp_path):
    result = run_entry_point("train.py", env={"PATH": "/usr/bin:/bin", "SM_OUTPUT_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "give channels train and valid" in result.stderr
    # SageMaker shows this file as the job's FailureReason
    assert "train and valid" in (tmp_path / "failure").read_text()


class _RunsCode:
    """What a tampered checkpoint would carry: unpickling it runs ``touch <marker>``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_tampered_checkpoint_is_refused_and_its_code_never_runs(dataset, tmp_path):
    # Given a checkpoint folder (synced from S3 on SageMaker) holding a file that runs code when unpickled
    checkpoints, marker = tmp_path / "checkpoints", tmp_path / "code-ran"
    checkpoints.mkdir()
    torch.save({"epoch": 1, "payload": _RunsCode(marker)}, checkpoints / "checkpoint.pt")
    # When training starts with it
    result = ec2train(dataset, tmp_path, "--checkpoint-dir", str(checkpoints), *FAST_HYPERPARAMETERS, "--epochs", "1")
    # Then it stops with a message saying why, and the payload never ran
    assert result.returncode == 2, result.stdout + result.stderr
    assert "holds more than tensors and plain values" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()


def test_another_jobs_checkpoint_in_the_folder_is_not_resumed(dataset, tmp_path):
    # Given a checkpoints folder that a job of another name left (a reused S3 prefix)
    checkpoints = tmp_path / "opt-ml-checkpoints"
    checkpoints.mkdir()
    first = run_sagemaker_hosts(
        tmp_path / "first",
        {"training": dataset},
        1,
        ("--epochs", "1"),
        {"CHECKPOINT_LOCAL_PATH": str(checkpoints), "TRAINING_JOB_NAME": "dog-breeds-run-a"},
    )[0]
    assert first.returncode == 0, first.output
    # When another job starts with it
    env = {"CHECKPOINT_LOCAL_PATH": str(checkpoints), "TRAINING_JOB_NAME": "dog-breeds-run-b"}
    second = run_sagemaker_hosts(tmp_path / "second", {"training": dataset}, 1, ("--epochs", "2"), env)[0]
    # Then it trains from the start, saying why, instead of continuing the other job's weights
    assert second.returncode == 0, second.output
    assert "not resuming" in second.output and "dog-breeds-run-a" in second.output
    history = json.loads((second.output_data_dir / "metrics.json").read_text())["history"]
    assert [row["epoch"] for row in history] == [1, 2]
