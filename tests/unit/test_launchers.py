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
