"""``make evaluate``: a model measured on labelled photos through the path that serves it, as a report a person reads.

    python -m ops.evaluate_model --model model.tar.gz|<artifact dir>|endpoint:<name> --data-dir <breed folders>
                                 [--output .offline/evaluate/<name>] [--labels labels.json]

The answers are the served ones: an artifact answers through its own ``code/inference.py`` in a child process without
AWS credentials (``ops.score_model``), an endpoint through SageMaker Runtime (``AWS_ENDPOINT_URL`` reaches the offline
stack's). The report says:

- top-1 and top-5 on the photos whose breed the model knows (folder names matched to its labels case- and
  punctuation-insensitively: ``Great_pyrenees`` is ``Great pyrenees``);
- per breed, recall (its photos answered right) and precision (its answers that were right), worst first, and the
  most confused pairs;
- calibration: the expected calibration error of the top-1 probability and a reliability diagram
  (``breed_classifier.calibration``): how far "0.80" is from being right 80 % of the time;
- what the model answers for photos outside its label set (a breed it was not trained on, or no dog at all), and how
  often that is "not a dog".

It writes ``report.json`` (every figure and every photo's answer), ``report.md`` and two plots, ``reliability.png``
and ``confusion.png`` (the worst breeds' confusions), into ``--output``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from breed_classifier.calibration import expected_calibration_error, reliability
from breed_classifier.labels import breed_name
from ops.score_model import IMAGE_TYPES, TOP_K, ScoringError, _answers, labelled_photos, unpack

NOT_A_DOG = "notadog"
WORST_SHOWN = 12
# One breed under two names: ImageNet's WordNet synsets list both (n02097298 "Scotch terrier, Scottish terrier";
# n02102318 "cocker spaniel, English cocker spaniel"; n02093428 "American Staffordshire terrier, ..., American pit
# bull terrier"), so a photo folder named one way is the label named the other
SYNONYMS = {
    "scottishterrier": "scotchterrier",
    "englishcockerspaniel": "cockerspaniel",
    "americanpitbullterrier": "americanstaffordshireterrier",
}


def name_key(name: str) -> str:
    """A breed name compared case- and punctuation-insensitively (``"Great_pyrenees"`` and ``"Great Pyrenees"`` meet),
    synonyms as one."""
    key = re.sub(r"[^a-z0-9]", "", breed_name(name).lower())
    return SYNONYMS.get(key, key)


@dataclass
class Evaluation:
    model: str
    data_dir: str
    photos: int
    known: int  # photos whose breed is one of the model's labels
    top1: float
    top5: float
    ece: float
    reliability: list[dict]
    per_breed: dict[str, dict] = field(default_factory=dict)
    confused_pairs: list[dict] = field(default_factory=list)
    outside: dict = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    answers: list[dict] = field(default_factory=list)
    dogs_answered_not_a_dog: float = 0.0  # of the photos of breeds it knows


def served_answers(model: str, photos: list[tuple[Path, str]], work: Path) -> tuple[list[dict], list[str] | None]:
    """Each photo's served answer (``{"predictions": [...]}`` or an error), and the model's labels when it can tell."""
    if model.startswith("endpoint:"):
        return _endpoint_answers(model.removeprefix("endpoint:"), photos), None
    path = Path(model)
    model_dir = path if path.is_dir() else unpack(path, work / "model")
    if not (model_dir / "labels.json").is_file():
        raise ScoringError(f"{model} has no labels.json: not a model artifact this project serves")
    requests = work / "requests.json"
    requests.write_text(json.dumps([str(photo) for photo, _ in photos]))
    labels = [label["breed"] for label in json.loads((model_dir / "labels.json").read_text())]
    return _answers(model_dir, requests, work / "answers.json"), labels


def _endpoint_answers(endpoint_name: str, photos: list[tuple[Path, str]]) -> list[dict]:
    import boto3
    from botocore.exceptions import ClientError

    runtime = boto3.client("sagemaker-runtime")
    answers = []
    for photo, _ in photos:
        try:
            response = runtime.invoke_endpoint(
                EndpointName=endpoint_name,
                Body=photo.read_bytes(),
                ContentType=IMAGE_TYPES[photo.suffix.lower()],
                Accept="application/json",
                CustomAttributes=f"top_k={TOP_K}",
            )
            answers.append(json.loads(response["Body"].read()))
        except ClientError as error:
            answers.append({"message": error.response.get("Error", {}).get("Message", str(error))})
    return answers


def evaluate(model: str, data_dir: Path, labels: list[str] | None = None) -> Evaluation:
    photos = labelled_photos(data_dir)
    with tempfile.TemporaryDirectory(prefix="evaluate-") as work:
        answers, model_labels = served_answers(model, photos, Path(work))
    labels = labels if labels is not None else model_labels
    known_keys = {name_key(label) for label in labels} if labels is not None else None
    return summarise(model, data_dir, photos, answers, known_keys)


def summarise(
    model: str, data_dir: Path, photos: list[tuple[Path, str]], answers: list[dict], known_keys: set[str] | None
) -> Evaluation:
    """Every figure of the report from the photos and their answers (``known_keys`` None: every breed is known)."""
    rows, refused = [], []
    for (photo, folder), answer in zip(photos, answers, strict=True):
        expected = breed_name(folder)
        known = known_keys is None or name_key(expected) in known_keys
        predictions = [
            {"breed": p["breed"], "probability": float(p["probability"])} for p in answer.get("predictions", [])
        ]
        if "predictions" not in answer:
            refused.append(f"{photo}: {answer.get('message', answer)}")
        rows.append({"photo": str(photo), "expected": expected, "known": known, "predictions": predictions})
    scored = [row for row in rows if row["known"]]
    if not scored:
        raise ScoringError(f"none of {data_dir}'s breeds is one of the model's labels: nothing to score")

    def right(row: dict, k: int) -> bool:
        return name_key(row["expected"]) in [name_key(p["breed"]) for p in row["predictions"][:k]]

    top1 = [right(row, 1) for row in scored]
    # dog photos of a known breed the model answered "not a dog": the gate's false alarms
    refused_dogs = sum(
        1 for row in scored if row["predictions"] and name_key(row["predictions"][0]["breed"]) == NOT_A_DOG
    )
    confidences = [row["predictions"][0]["probability"] if row["predictions"] else 0.0 for row in scored]
    per_breed: dict[str, dict] = {}
    confusions: Counter = Counter()
    for row, correct in zip(scored, top1, strict=True):
        breed = per_breed.setdefault(row["expected"], {"photos": 0, "correct": 0, "predicted": 0})
        breed["photos"] += 1
        breed["correct"] += correct
        answered = row["predictions"][0]["breed"] if row["predictions"] else "(refused)"
        if not correct:
            confusions[(row["expected"], answered)] += 1
    for row in scored:  # precision: of the answers naming a breed of the set, how many were right
        if row["predictions"]:
            answered = next((b for b in per_breed if name_key(b) == name_key(row["predictions"][0]["breed"])), None)
            if answered is not None:
                per_breed[answered]["predicted"] += 1
    for breed in per_breed.values():
        breed["recall"] = breed["correct"] / breed["photos"]
        breed["precision"] = breed["correct"] / breed["predicted"] if breed["predicted"] else None
    outside = [row for row in rows if not row["known"]]
    outside_answers = Counter(row["predictions"][0]["breed"] for row in outside if row["predictions"])
    not_a_dog = sum(
        1 for row in outside if row["predictions"] and name_key(row["predictions"][0]["breed"]) == NOT_A_DOG
    )
    return Evaluation(
        model=model,
        data_dir=str(data_dir),
        photos=len(rows),
        known=len(scored),
        top1=sum(top1) / len(scored),
        top5=sum(right(row, 5) for row in scored) / len(scored),
        ece=expected_calibration_error(confidences, top1),
        reliability=reliability(confidences, top1),
        per_breed=dict(sorted(per_breed.items(), key=lambda item: (item[1]["recall"], item[0]))),
        confused_pairs=[
            {"true": true, "predicted": predicted, "count": count}
            for (true, predicted), count in sorted(confusions.items(), key=lambda item: (-item[1], item[0]))
        ][:10],
        outside={
            "photos": len(outside),
            "breeds": sorted({row["expected"] for row in outside}),
            "answers": dict(outside_answers.most_common()),
            "not_a_dog_rate": not_a_dog / len(outside) if outside else None,
        },
        refused=refused,
        answers=rows,
        dogs_answered_not_a_dog=refused_dogs / len(scored),
    )


def markdown(result: Evaluation) -> str:
    lines = [
        f"# {Path(result.model).name or result.model} on {result.data_dir}",
        "",
        f"- **top-1 {result.top1:.1%}**, top-5 {result.top5:.1%} on the {result.known} photos of breeds the model "
        f"knows ({result.photos} photos in all)",
        f"- calibration: expected calibration error **{result.ece:.3f}** (0 is perfect; `reliability.png`)",
        f'- dog photos answered "not a dog": {result.dogs_answered_not_a_dog:.1%}',
    ]
    if result.outside["photos"]:
        rate = result.outside["not_a_dog_rate"]
        lines.append(
            f"- {result.outside['photos']} photos of breeds outside its labels "
            f'({", ".join(result.outside["breeds"])}): answered "not a dog" {rate:.0%} of the time'
        )
    if result.refused:
        lines.append(f"- {len(result.refused)} photos refused by the serving code (counted wrong)")
    lines += ["", "## Worst breeds", "", "| breed | photos | recall | precision |", "|---|---|---|---|"]
    for breed, counts in list(result.per_breed.items())[:WORST_SHOWN]:
        precision = "-" if counts["precision"] is None else f"{counts['precision']:.0%}"
        lines.append(f"| {breed} | {counts['photos']} | {counts['recall']:.0%} | {precision} |")
    lines += ["", "## Most confused", "", "| breed | answered as | photos |", "|---|---|---|"]
    lines += [f"| {pair['true']} | {pair['predicted']} | {pair['count']} |" for pair in result.confused_pairs]
    if result.outside["answers"]:
        lines += ["", "## Answers outside the label set", "", "| answer | photos |", "|---|---|"]
        lines += [f"| {breed} | {count} |" for breed, count in list(result.outside["answers"].items())[:10]]
    lines += ["", "![reliability](reliability.png)", "", "![confusion](confusion.png)", ""]
    return "\n".join(lines)


def plot(result: Evaluation, output: Path) -> None:
    """reliability.png: accuracy per probability bin against the diagonal; confusion.png: the worst breeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 5))
    filled = [row for row in result.reliability if row["count"]]
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    axis.bar(
        [(row["lower"] + row["upper"]) / 2 for row in filled],
        [row["accuracy"] for row in filled],
        width=1 / len(result.reliability),
        edgecolor="black",
        alpha=0.7,
        label="accuracy of the answers in the bin",
    )
    axis.set(xlabel="top-1 probability", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1))
    axis.set_title(f"Reliability (ECE {result.ece:.3f}, {result.known} photos)")
    axis.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(output / "reliability.png", dpi=100)
    plt.close(figure)

    worst = list(result.per_breed)[:WORST_SHOWN]
    columns = worst + ["other"]
    counts = [[0] * len(columns) for _ in worst]
    for row in result.answers:
        if row["known"] and row["expected"] in worst:
            answered = row["predictions"][0]["breed"] if row["predictions"] else "other"
            match = next((b for b in worst if name_key(b) == name_key(answered)), "other")
            counts[worst.index(row["expected"])][columns.index(match)] += 1
    figure, axis = plt.subplots(figsize=(1 + 0.5 * len(columns), 1 + 0.45 * len(worst)))
    axis.imshow(counts, cmap="Blues")
    axis.set_xticks(range(len(columns)), columns, rotation=60, ha="right")
    axis.set_yticks(range(len(worst)), worst)
    for i, counted in enumerate(counts):
        for j, count in enumerate(counted):
            if count:
                axis.text(j, i, str(count), ha="center", va="center")
    axis.set(xlabel="answered", ylabel="photo of")
    axis.set_title("The worst breeds: what their photos were answered")
    figure.tight_layout()
    figure.savefig(output / "confusion.png", dpi=100)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="model.tar.gz, an artifact folder, or endpoint:<name>")
    parser.add_argument("--data-dir", type=Path, required=True, help="<breed folder>/<photo>")
    parser.add_argument("--output", type=Path, default=None, help="where the report goes (.offline/evaluate/<name>)")
    parser.add_argument("--labels", type=Path, default=None, help="an endpoint's labels.json (which breeds it knows)")
    args = parser.parse_args(argv)
    name = args.model.removeprefix("endpoint:") if args.model.startswith("endpoint:") else Path(args.model).name
    output = args.output or Path(".offline") / "evaluate" / re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    try:
        labels = None
        if args.labels is not None:
            labels = [label["breed"] for label in json.loads(args.labels.read_text())]
        result = evaluate(args.model, args.data_dir, labels)
    except (ScoringError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    output.mkdir(parents=True, exist_ok=True)
    (output / "report.json").write_text(json.dumps(asdict(result), indent=2))
    (output / "report.md").write_text(markdown(result))
    plot(result, output)
    print(markdown(result).split("\n## ")[0].strip())
    print(f"\nreport: {output / 'report.md'} (and report.json, reliability.png, confusion.png)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
