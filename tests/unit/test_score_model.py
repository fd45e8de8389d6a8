"""ops/score_model.py scores an artifact through the serving code it carries, counts as an independent count would,
and gives that code neither the caller's AWS identity nor a way out of its folder."""

from __future__ import annotations

import io
import tarfile

import pytest
from PIL import Image

from ops.score_model import ScoringError, score
from tests.support.artifacts import labelled_photos as photos
from tests.support.artifacts import one_answer_artifact, pack

FOLDERS = ["001.Affenpinscher", "002.Afghan_hound", "003.Airedale_terrier"]


@pytest.fixture
def always_afghan(tmp_path):
    """An artifact whose network answers "Afghan hound" for every photo: its score is known without running it."""
    return one_answer_artifact(tmp_path, FOLDERS, 1)


def test_the_score_is_the_served_answers_counted(always_afghan, tmp_path):
    data = photos(tmp_path / "golden", {FOLDERS[0]: 3, FOLDERS[1]: 2, FOLDERS[2]: 1})
    (data / FOLDERS[0] / "broken.jpg").write_bytes(b"not a jpeg")  # the serving code refuses it: counted wrong

    result = score(always_afghan, data)

    assert result.photos == 7
    assert result.top1 == pytest.approx(2 / 7)  # only the two Afghan hounds
    assert result.top5 == pytest.approx(6 / 7)  # three labels: every decodable photo's breed is in the top five
    assert result.per_breed["Afghan hound"] == {"photos": 2, "correct": 2}
    assert result.per_breed["Affenpinscher"] == {"photos": 4, "correct": 0}
    assert len(result.refused) == 1 and "broken.jpg" in result.refused[0]


def test_the_artifacts_code_runs_without_the_callers_aws_identity(always_afghan, tmp_path, monkeypatch):
    unpacked = tmp_path / "spy"
    with tarfile.open(always_afghan) as tar:
        tar.extractall(unpacked, filter="data")
    (unpacked / "code" / "inference.py").write_text(
        "import json, os\n"
        "def model_fn(model_dir):\n    return None\n"
        "def transform_fn(model, body, content_type, accept, context=None):\n"
        "    seen = os.environ.get('AWS_SECRET_ACCESS_KEY', 'none')\n"
        "    return json.dumps({'predictions': [{'breed': seen}]}), 'application/json'\n"
    )
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "the-callers-secret")
    data = photos(tmp_path / "golden", {"none": 1})

    result = score(pack(unpacked, tmp_path / "spy.tar.gz"), data)

    assert result.top1 == 1.0  # the artifact's code answered "none": it saw no secret


def test_an_archive_that_reaches_outside_its_folder_is_refused(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        entry = tarfile.TarInfo("../outside.py")
        entry.size = 4
        tar.addfile(entry, io.BytesIO(b"pass"))
    with pytest.raises(ScoringError, match="not a readable model.tar.gz"):
        score(archive, photos(tmp_path / "golden", {FOLDERS[0]: 1}))
    assert not (tmp_path / "outside.py").exists()


def test_a_folder_without_breed_folders_is_refused_with_the_layout_expected(always_afghan, tmp_path):
    (tmp_path / "flat").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "flat" / "a.jpg")
    with pytest.raises(ScoringError, match="<breed folder>/<photo>"):
        score(always_afghan, tmp_path / "flat")
