"""The launchers' own refusals and the reproducible code package (no AWS calls)."""

import io
import os
import shutil
import tarfile

import pytest
from launchers.package_source import TRAINING_JOBS
from launchers.upload_data import DataLayoutError, image_files

from dog_breeds.training_code import source_tarball
from offline_stack.synthetic_images import write_image_folder


def test_upload_refuses_a_folder_without_train_and_valid(tmp_path):
    with pytest.raises(DataLayoutError, match="no train or valid folder"):
        image_files(tmp_path)


def test_upload_refuses_splits_with_different_classes(tmp_path):
    write_image_folder(tmp_path, {"train": 1, "valid": 1}, classes=2)
    (tmp_path / "valid" / "002.Afghan_hound" / "0000.jpg").unlink()
    (tmp_path / "valid" / "002.Afghan_hound").rmdir()
    with pytest.raises(DataLayoutError, match="different class folders"):
        image_files(tmp_path)


def test_the_training_code_package_is_reproducible_and_leaves_the_launchers_out(tmp_path):
    # Given two checkouts of the same code whose files differ in times and permissions
    copies = [tmp_path / "a" / "training_jobs", tmp_path / "b" / "training_jobs"]
    for number, copy in enumerate(copies):
        shutil.copytree(TRAINING_JOBS, copy, ignore=shutil.ignore_patterns("__pycache__"))
        for path in copy.rglob("*"):
            os.utime(path, (1_000_000 * (number + 1), 1_000_000 * (number + 1)))
            if path.is_file():
                path.chmod(0o600 if number else 0o755)
    first, second = (source_tarball(copy) for copy in copies)
    assert first == second == source_tarball(TRAINING_JOBS)  # same bytes, same content address
    with tarfile.open(fileobj=io.BytesIO(first)) as archive:
        members = archive.getmembers()
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in members} == {(0, 0, 0, "", "", 0o644)}
    with tarfile.open(fileobj=io.BytesIO(first)) as archive:
        names = archive.getnames()
    assert "train.py" in names and "inference.py" in names and "breed_classifier/model.py" in names
    assert not any(name.startswith(("launchers", "ec2train")) or "__pycache__" in name for name in names)


def test_stored_code_is_taken_only_when_its_key_holds_those_bytes():
    """A 412 on the content address is read back, not trusted by name: anyone allowed to write code/ could have put
    other bytes at the next commit's key first (moto in-process, the S3 the offline stack runs)."""
    import boto3
    from moto import mock_aws

    from dog_breeds.training_code import StoredCodeMismatchError, code_key, store_source

    code = source_tarball(TRAINING_JOBS)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="artifacts")
        uri = store_source(s3, "artifacts", code)
        assert uri == f"s3://artifacts/{code_key(code)}" and len(code_key(code).split("-")[1].split("/")[0]) == 64
        assert store_source(s3, "artifacts", code) == uri  # the same bytes again: a no-op
        s3.delete_object(Bucket="artifacts", Key=code_key(code))
        s3.put_object(Bucket="artifacts", Key=code_key(code), Body=b"import os; os.system('exfiltrate')")
        with pytest.raises(StoredCodeMismatchError, match="holds other bytes"):
            store_source(s3, "artifacts", code)
