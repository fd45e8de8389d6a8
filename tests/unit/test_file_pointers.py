"""Every repository file a docstring, comment, Makefile note or document names exists.

A pointer to a renamed or deleted file sends the reader nowhere; this test fails instead. A reference counts
when it names a file with an extension (``deploy_endpoint.py``, ``dog_breeds/openapi.json``) or a path under a
top-level folder (``offline_stack/``). It resolves when a tracked file or folder ends with it. Files that runs
make, and files of other projects, are listed below with where they come from.
"""

from __future__ import annotations

import io
import re
import subprocess
import tokenize
from pathlib import Path

from offline_stack.sam_template import PROJECT_ROOT

# Named in the code but never in the repository: written by runs, or part of something else.
NOT_IN_THE_REPOSITORY = {
    # written by training, make build, make bench, make demo and the offline stack
    "model_config.json": "the model artifact's config (breed_classifier.artifact)",
    "labels.json": "the model artifact's class names (breed_classifier.artifact)",
    "model.pt": "the model artifact's weights",
    "model.tar.gz": "the model artifact",
    "metrics.json": "training's final metrics (SM_OUTPUT_DATA_DIR)",
    "report.md": "make demo's report (.offline/demo/)",
    "bench.md": "make bench's table (.offline/bench/)",
    "bench.json": "make bench's numbers (.offline/bench/)",
    "ready.json": "the sam local services container's readiness file",
    "env.json": "sam local's environment file (.offline/sam-local/)",
    "template-local.yaml": "the template sam local runs (.aws-sam/build/)",
    "training_curves.svg": "make demo's learning curves",
    "web-page.png": "the web page test's screenshot (.offline/test-artifacts/)",
    "plan.png": "make plan's curve (.offline/)",
    "reliability.json": "make reliability's table (.offline/)",
    "report.json": "make evaluate's figures and answers (.offline/evaluate/<model>/)",
    "scores.json": "make mutation's per-module scores (.offline/mutation/)",
    "sourcedir.tar.gz": "the uploaded training code",
    "record.json": "make export-model's record of the promoted model (.promotion/)",
    "outputs.json": "a stack's outputs for the post-deploy suite (.offline/outputs-<stage>.json)",
    "pipeline.yaml": "the release workflow (.github/workflows/pipeline.yaml)",
    # other projects' files
    "endpoints.json": "botocore's endpoint table",
    "data/endpoints.json": "botocore's endpoint table",
    "botocore/data": "botocore's models",
    "service-2.json": "botocore's service models",
    "lambdafunction.py": "the original course project's handler",
    "requirements.txt": "the SageMaker toolkit's name for a model's or job's dependencies",
    "code/inference.py": "where the model artifact carries the inference handler",
}
EXTENSIONS = ("py", "md", "json", "yaml", "yml", "toml", "txt", "sh", "html", "cfg", "ini")
REFERENCE = re.compile(
    r"(?<![\w./$<{-])((?:[\w.-]+/)*[\w-]+\.(?:" + "|".join(EXTENSIONS) + r")|(?:[\w.-]+/)+)(?![\w/-])"
)


def tracked_files() -> list[str]:
    listing = subprocess.run(["git", "ls-files"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    return [name for name in listing.stdout.splitlines() if (PROJECT_ROOT / name).exists()]


TRACKED = tracked_files()
TOP_LEVEL = {name.split("/")[0] for name in TRACKED if "/" in name}
TRACKED_PATHS = {*TRACKED, *(str(folder) for name in TRACKED for folder in Path(name).parents if folder.name)}
# A section cited by title: docs/api.md, "The prediction API" or docs/pipeline.md, "Releases".
SECTION_CITATION = re.compile(r"\b(README|docs/[\w-]+\.md)(?:'s)?,? \(?\"([^\"]+)\"")


def prose(path: Path):
    """(line, text) of each comment and docstring of a module, each comment of the Makefile, each line of a document."""
    text = path.read_text()
    if path.suffix == ".py":
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            is_docstring = token.type == tokenize.STRING and token.string.lstrip("rRbBuU").startswith(('"""', "'''"))
            if token.type == tokenize.COMMENT or is_docstring:
                yield token.start[0], token.string
    elif path.name == "Makefile":
        for number, line in enumerate(text.splitlines(), 1):
            if "#" in line:
                yield number, line[line.index("#") :]
    else:
        yield from enumerate(text.splitlines(), 1)


def is_a_pointer(reference: str) -> bool:
    has_extension = "." in reference.rsplit("/", 1)[-1]
    return has_extension or reference.split("/")[0] in TOP_LEVEL


def resolves(reference: str) -> bool:
    reference = reference.rstrip("/").removeprefix("./")
    if reference in NOT_IN_THE_REPOSITORY or reference.rsplit("/", 1)[-1] in NOT_IN_THE_REPOSITORY:
        return True
    return any(path == reference or path.endswith("/" + reference) for path in TRACKED_PATHS)


def documents() -> list[str]:
    kept = (".py", ".md")
    return [name for name in TRACKED if name.endswith(kept) or name == "Makefile"]


def test_every_file_a_comment_docstring_or_document_names_exists():
    dangling = [
        f"{name}:{line}: {reference}"
        for name in documents()
        for line, text in prose(PROJECT_ROOT / name)
        for reference in REFERENCE.findall(text)
        if is_a_pointer(reference) and not resolves(reference)
    ]
    assert not dangling, "names a file that is not in the repository:\n" + "\n".join(dangling)


def headings(document: str) -> list[str]:
    lines = (PROJECT_ROOT / ("README.md" if document == "README" else document)).read_text().splitlines()
    return [line.lstrip("#").strip().replace("`", "").lower() for line in lines if line.startswith("#")]


def test_every_section_a_comment_docstring_or_document_cites_exists():
    dangling = [
        f"{name}:{line}: {document}, {title!r}"
        for name in documents()
        for line, text in prose(PROJECT_ROOT / name)
        for document, title in SECTION_CITATION.findall(text)
        if not any(title.lower() in heading for heading in headings(document))
    ]
    assert not dangling, "cites a section that does not exist:\n" + "\n".join(dangling)


def test_the_check_catches_a_dangling_pointer(tmp_path):
    # Given a module whose docstring names a renamed file, and a comment naming one that exists
    module = tmp_path / "example.py"
    module.write_text('"""See dog_breeds/deploy_model.py."""\n# and dog_breeds/deploy_endpoint.py\n')
    references = [reference for _, text in prose(module) for reference in REFERENCE.findall(text)]
    # Then the first does not resolve and the second does
    assert references == ["dog_breeds/deploy_model.py", "dog_breeds/deploy_endpoint.py"]
    assert [resolves(reference) for reference in references] == [False, True]
