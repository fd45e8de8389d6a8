"""Score a model.tar.gz on labelled photos through the serving code the artifact carries: what an endpoint would answer.

    python -m ops.score_model --model model.tar.gz --data-dir golden/ [--json <file>]

``--data-dir`` is an ImageFolder of one split: ``<breed folder>/<photo>`` (``001.Affenpinscher/x.jpg``; the folder
names are the training data's, so the expected answer is the breed name the model's labels give that folder).

The artifact is unpacked with tarfile's ``data`` filter (no links out, no absolute paths), and its own
``code/inference.py`` answers every photo as the endpoint does: ``model_fn`` once, then ``transform_fn`` with the
photo's bytes and its content type, five answers asked for (``top_k=5``, as the endpoint's custom attribute). That
code comes from the artifact, so it runs in a child process whose environment holds no AWS credentials and no
``PYTHONPATH``: the score of an approved artifact is the score of its bytes, and its code never sees the caller's
identity. Photos the serving code refuses (a 4xx answer) count as wrong and are listed.

Used by ``make promote-model``: the target stage re-scores the candidate on its own golden set before it registers
or releases anything (``ops/promote_model.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}
TOP_K = 5
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ScoringError(Exception):
    """The photos or the artifact cannot be scored; the message says what was wrong."""


@dataclass
class Score:
    photos: int
    top1: float
    top5: float
    refused: list[str] = field(default_factory=list)  # photos the serving code answered with an error
    per_breed: dict[str, dict[str, int]] = field(default_factory=dict)  # breed -> {"photos": n, "correct": k}


def labelled_photos(data_dir: Path) -> list[tuple[Path, str]]:
    """(photo, its breed folder) for every photo of ``data_dir``; refuses a folder that is not one split."""
    if not data_dir.is_dir():
        raise ScoringError(f"{data_dir} is not a folder; expected <breed folder>/<photo> (.jpg, .jpeg, .png)")
    photos = [
        (path, folder.name)
        for folder in sorted(p for p in data_dir.iterdir() if p.is_dir())
        for path in sorted(folder.iterdir())
        if path.suffix.lower() in IMAGE_TYPES
    ]
    if not photos:
        raise ScoringError(f"{data_dir} holds no photos in breed folders; expected <breed folder>/<photo>")
    return photos


def unpack(artifact: Path, into: Path) -> Path:
    """The artifact's files under ``into``; refuses one without the serving code or the model."""
    try:
        with tarfile.open(artifact) as tar:
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError) as error:
        raise ScoringError(f"{artifact} is not a readable model.tar.gz: {error}") from error
    missing = [name for name in ("code/inference.py", "labels.json") if not (into / name).is_file()]
    if missing:
        raise ScoringError(f"{artifact} has no {', '.join(missing)}: not a model artifact this project serves")
    return into


def score(artifact: Path, data_dir: Path) -> Score:
    """Top-1 and top-5 of the artifact's served answers on ``data_dir``'s photos."""
    from breed_classifier.labels import breed_name

    photos = labelled_photos(data_dir)
    with tempfile.TemporaryDirectory(prefix="score-") as work:
        model_dir = unpack(artifact, Path(work) / "model")
        requests = Path(work) / "requests.json"
        requests.write_text(json.dumps([str(path) for path, _ in photos]))
        answers = _answers(model_dir, requests, Path(work) / "answers.json")
    per_breed: dict[str, dict[str, int]] = {}
    top1 = top5 = 0
    refused = []
    for (path, folder), answer in zip(photos, answers, strict=True):
        expected = breed_name(folder)
        counts = per_breed.setdefault(expected, {"photos": 0, "correct": 0})
        counts["photos"] += 1
        if "predictions" not in answer:
            refused.append(f"{path}: {answer.get('message', answer)}")
            continue
        breeds = [prediction["breed"] for prediction in answer["predictions"]]
        top1 += breeds[:1] == [expected]
        top5 += expected in breeds
        counts["correct"] += breeds[:1] == [expected]
    return Score(len(photos), top1 / len(photos), top5 / len(photos), refused, per_breed)


def _answers(model_dir: Path, requests: Path, answers: Path) -> list[dict]:
    """The child process's answers, one per photo."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "PYTHONPATH"}
    command = [sys.executable, "-m", "ops.score_model", "_answer", str(model_dir), str(requests), str(answers)]
    result = subprocess.run(
        command, cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if result.returncode != 0:
        raise ScoringError(f"the artifact's serving code failed to load or answer: {result.stderr.strip()[-1500:]}")
    return json.loads(answers.read_text())


class _Context:
    """The slice of the inference toolkit's context transform_fn reads: the request's custom attributes."""

    class _Properties:
        @staticmethod
        def get_request_properties() -> dict[str, str]:
            return {"X-Amzn-SageMaker-Custom-Attributes": f"top_k={TOP_K}"}

    request_processor = [_Properties()]

    def set_response_status(self, status: int, reason: str) -> None:
        pass


def _answer(model_dir: str, requests: str, answers: str) -> None:
    """In the child: the artifact's own inference.py, as the endpoint loads it, answers each photo."""
    sys.path.insert(0, str(Path(model_dir) / "code"))
    import inference  # the artifact's, first on the path

    model = inference.model_fn(model_dir)
    out = []
    for photo in json.loads(Path(requests).read_text()):
        path = Path(photo)
        body, _ = inference.transform_fn(model, path.read_bytes(), IMAGE_TYPES[path.suffix.lower()], "", _Context())
        out.append(json.loads(body))
    Path(answers).write_text(json.dumps(out))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_answer"]:
        _answer(*argv[1:4])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a model.tar.gz")
    parser.add_argument("--data-dir", type=Path, required=True, help="<breed folder>/<photo>")
    parser.add_argument("--json", type=Path, default=None, help="also write the score here")
    args = parser.parse_args(argv)
    try:
        result = score(args.model, args.data_dir)
    except ScoringError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"{args.model}: top-1 {result.top1:.4f}, top-5 {result.top5:.4f} on {result.photos} photos of {args.data_dir}"
    )
    for refusal in result.refused:
        print(f"  refused: {refusal}")
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
