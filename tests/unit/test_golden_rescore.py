"""Prod's re-score on its golden set (``ops/promote_model.rescore``, ``gate_of``) and the golden set's upload
(``ops/upload_golden``): each decision at its boundary, against small in-memory stand-ins for the scorer and S3
(tests/integration/test_promotion.py runs them with real artifacts and moto)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ops import promote_model
from ops.promote_model import PromotionRefused, gate_of, rescore
from ops.score_model import Score, ScoringError
from ops.stages import read_stage
from ops.upload_golden import upload_golden_set

GATE = (0.6, 0.02)  # threshold, tolerance


def _scored(monkeypatch, candidate: float, serving: float | None = None) -> None:
    """The scorer answers these top-1 accuracies for the artifacts named candidate and serving."""
    accuracies = {"candidate": candidate, "serving": serving}

    def score(artifact: Path, golden: Path) -> Score:
        return Score(photos=50, top1=accuracies[artifact.name], top5=1.0)

    monkeypatch.setattr(promote_model, "score", score)


@pytest.mark.parametrize(("candidate", "promoted"), [(0.6, True), (0.5999, False)])
def test_the_threshold_admits_its_own_value_and_nothing_below(monkeypatch, candidate, promoted):
    _scored(monkeypatch, candidate)
    if promoted:
        assert rescore(Path("candidate"), Path("golden"), GATE)[0].top1 == candidate
    else:
        with pytest.raises(PromotionRefused, match=r"top-1 0\.5999 on 50 photos < threshold 0\.6000: not promoted"):
            rescore(Path("candidate"), Path("golden"), GATE)


@pytest.mark.parametrize(("candidate", "promoted"), [(0.88, True), (0.8799, False)])
def test_a_regression_up_to_the_tolerance_passes_and_beyond_it_is_refused(monkeypatch, candidate, promoted):
    _scored(monkeypatch, candidate, serving=0.9)
    if promoted:
        candidate_score, serving_score = rescore(Path("candidate"), Path("golden"), GATE, Path("serving"))
        assert (candidate_score.top1, serving_score.top1) == (candidate, 0.9)
    else:
        with pytest.raises(PromotionRefused, match=r"< the serving model's 0\.9000 - tolerance 0\.0200 on the same 50"):
            rescore(Path("candidate"), Path("golden"), GATE, Path("serving"))


def test_a_golden_set_that_cannot_be_scored_refuses_the_promotion(monkeypatch):
    def broken(artifact, golden):
        raise ScoringError("no labelled photos under golden")

    monkeypatch.setattr(promote_model, "score", broken)
    with pytest.raises(PromotionRefused, match="the golden set could not be scored: no labelled photos under golden"):
        rescore(Path("candidate"), Path("golden"), GATE)


def test_the_gate_is_the_stages_samconfig_override_else_the_templates_default():
    prod, testing = read_stage("prod"), read_stage("testing")
    for stage in (prod, testing):
        threshold, tolerance = gate_of(stage)
        overrides = stage.parameter_overrides
        assert threshold == float(overrides.get("GateMinimumTestAccuracy", 0.6))
        assert tolerance == float(overrides.get("GateMaximumAccuracyRegression", 0.02))
    overridden = read_stage("prod")
    overridden.parameter_overrides["GateMinimumTestAccuracy"] = "0.75"
    assert gate_of(overridden)[0] == 0.75


class _Bucket:
    """list_objects_v2 (one page), upload_file and delete_object over a dict, with S3's single-part MD5 ETag."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.uploads: list[str] = []

    def get_paginator(self, name):
        bucket = self

        class Pages:
            def paginate(self, Bucket, Prefix):  # noqa: N803 (boto3's names)
                items = [
                    {"Key": key, "ETag": f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"'}
                    for key, body in bucket.objects.items()
                    if key.startswith(Prefix)
                ]
                return [{"Contents": items}]

        return Pages()

    def upload_file(self, path, bucket, key):
        self.objects[key] = Path(path).read_bytes()
        self.uploads.append(key)

    def delete_object(self, Bucket, Key):  # noqa: N803
        del self.objects[Key]


def test_the_golden_set_mirrors_the_folder_byte_for_byte(tmp_path):
    folder = tmp_path / "golden" / "001.Affenpinscher"
    folder.mkdir(parents=True)
    (folder / "a.jpg").write_bytes(b"photo a")
    (folder / "b.jpg").write_bytes(b"photo b")
    s3 = _Bucket()
    assert upload_golden_set(s3, "bucket", tmp_path / "golden") == (2, 0)
    assert upload_golden_set(s3, "bucket", tmp_path / "golden") == (0, 0)  # unchanged: nothing sent again
    (folder / "a.jpg").write_bytes(b"photo A")  # other bytes, the same size: sent again
    (folder / "b.jpg").unlink()
    assert upload_golden_set(s3, "bucket", tmp_path / "golden") == (1, 1)
    assert s3.objects == {"golden/001.Affenpinscher/a.jpg": b"photo A"}


def test_only_breed_folder_photo_keys_are_downloaded_and_never_outside_the_folder(tmp_path):
    from ops.promote_model import download_golden_set

    s3 = _Bucket()
    s3.objects = {
        "golden/001.Affenpinscher/a.jpg": b"a",
        "golden/../escape.jpg": b"x",
        "golden/001.Affenpinscher/../../escape.jpg": b"x",
        "golden/loose.jpg": b"x",
        "golden/001.Affenpinscher/": b"",
    }
    s3.download_file = lambda bucket, key, path: Path(path).write_bytes(s3.objects[key])
    into = tmp_path / "work" / "golden"
    assert download_golden_set(s3, "bucket", into) == into
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == [
        "work/golden/001.Affenpinscher/a.jpg"
    ]
    assert download_golden_set(_Bucket(), "bucket", tmp_path / "none") is None  # no golden set: None, not a folder


def _refused(operation: str):
    from botocore.exceptions import ClientError

    message = f"User: arn:aws:sts::123456789012:assumed-role/pipeline/github is not authorized to perform: {operation}"
    return ClientError({"Error": {"Code": "AccessDenied", "Message": message}}, operation.split(":")[1])


def test_an_aws_refusal_ends_the_golden_upload_with_awss_words_not_a_traceback(monkeypatch, tmp_path, capsys):
    from ops import upload_golden

    class Refusing:
        def get_paginator(self, name):
            raise _refused("s3:ListBucket")

    monkeypatch.setattr(upload_golden, "stack_outputs", lambda stack, region: {"ArtifactsBucketName": "bucket"})
    monkeypatch.setattr(upload_golden.boto3, "client", lambda *args, **kwargs: Refusing())
    (tmp_path / "001.Affenpinscher").mkdir()
    (tmp_path / "001.Affenpinscher" / "a.jpg").write_bytes(b"photo")
    assert upload_golden.main(["--stage", "prod", "--data-dir", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: the golden set's upload stopped: An error occurred (AccessDenied)")
    assert "not authorized to perform: s3:ListBucket" in error and "Traceback" not in error


def test_an_aws_refusal_ends_the_export_with_awss_words_not_a_traceback(monkeypatch, tmp_path, capsys):
    def served_package(sagemaker, outputs):
        raise _refused("sagemaker:DescribeEndpoint")

    monkeypatch.setattr(promote_model, "stack_outputs", lambda stack, region: {"EndpointName": "e"})
    monkeypatch.setattr(promote_model, "served_package", served_package)
    assert promote_model.main(["export", "--stage", "testing", "--dir", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: export stopped: An error occurred (AccessDenied) when calling the DescribeEndpoint")
    assert not any(tmp_path.iterdir())  # nothing exported
