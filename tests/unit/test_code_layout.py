"""The layering rules (docs/layout.md): handlers -> logic -> adapters, and the Lambda side apart from training."""

import ast
from pathlib import Path

import pytest

from dog_breeds.settings import PredictSettings
from offline_stack.sam_template import PROJECT_ROOT, SamTemplate

LAMBDA_SIDE = [PROJECT_ROOT / "functions", PROJECT_ROOT / "layers"]
ADAPTERS = PROJECT_ROOT / "layers/shared/python/dog_breeds/adapters"


def _python_files(*roots: Path) -> list[Path]:
    return sorted(path for root in roots for path in root.rglob("*.py") if ".aws-sam" not in path.parts)


def _imported_top_levels(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", _python_files(*LAMBDA_SIDE), ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_lambda_side_never_imports_torch_training_code_or_the_offline_stack(path):
    assert not _imported_top_levels(path) & {"torch", "torchvision", "training_jobs", "offline_stack", "sagemaker"}


@pytest.mark.parametrize("path", _python_files(*LAMBDA_SIDE), ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_only_adapters_import_boto3(path):
    if ADAPTERS not in path.parents:
        assert not _imported_top_levels(path) & {"boto3", "botocore"}


def test_handler_modules_are_thin():
    template = SamTemplate.load()
    for logical_id, resource in template.resources.items():
        if resource["Type"] == "AWS::Serverless::Function":
            properties = resource["Properties"]
            module = properties["Handler"].rpartition(".")[0]
            source = PROJECT_ROOT / properties["CodeUri"] / f"{module}.py"
            assert len(source.read_text().splitlines()) <= 40, f"{logical_id}: {source} is not a thin handler"


def test_lambda_requirements_never_include_torch():
    for requirements in [
        *PROJECT_ROOT.glob("functions/*/requirements.txt"),
        *PROJECT_ROOT.glob("layers/*/python/requirements.txt"),
    ]:
        assert "torch" not in requirements.read_text().lower(), requirements


def test_predict_function_limits_match_the_contract():
    template = SamTemplate.load()
    properties = template.function_properties("PredictFunction")
    assert template.parameters["PredictReservedConcurrency"] == "2"
    assert properties["ReservedConcurrentExecutions"] == {
        "Fn::If": ["ReservePredictConcurrency", {"Ref": "PredictReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    }
    # Below API Gateway's 30 s integration limit, so a slow endpoint answers 504 from us, not from the API
    assert properties["Timeout"] < 30
    assert properties["Runtime"] == "python3.12"
    # The bounded retries fit in the function's timeout: attempts x (connect + read) leaves time to answer
    timeouts = PredictSettings.from_environment({"ENDPOINT_NAME": "dog-breed-classifier"}).timeouts
    budget = timeouts.max_attempts * (timeouts.connect_seconds + timeouts.read_seconds)
    assert budget + 2 <= properties["Timeout"], f"{budget} s of endpoint calls in a {properties['Timeout']} s function"


@pytest.mark.parametrize(
    ("broken", "words"),
    [("Handler: app.lambda_handler", "has no function 'missing'"), ("CodeUri: functions/predict/", "Handler module")],
)
def test_a_template_that_wires_a_handler_wrongly_is_refused_naming_it(broken, words, tmp_path):
    # Given a template whose PredictFunction names a handler function (or code folder) that does not exist
    from offline_stack.lambda_invoker import LambdaFunction, TemplateWiringError

    text = (PROJECT_ROOT / "template.yaml").read_text()
    replacement = {"Handler: app.lambda_handler": "Handler: app.missing"}.get(broken, "CodeUri: functions/nowhere/")
    (tmp_path / "template.yaml").write_text(text.replace(broken, replacement, 1))
    template = SamTemplate.load(tmp_path / "template.yaml")
    template.root = PROJECT_ROOT
    # Then the cold start fails with the project's wiring error, naming the function and what is missing
    with pytest.raises(TemplateWiringError, match=words) as refusal, LambdaFunction("PredictFunction", template):
        pass
    assert "PredictFunction" in str(refusal.value)


def test_make_help_lists_every_documented_target_in_aligned_columns():
    import re
    import subprocess

    lines = subprocess.run(["make", "--no-print-directory", "help"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    rows = [re.match(r"  make (\S+)( +)\S", line) for line in lines.stdout.splitlines()]
    assert rows and all(rows), lines.stdout
    documented = re.findall(r"^([a-z-]+):.*## ", (PROJECT_ROOT / "Makefile").read_text(), re.MULTILINE)
    assert [row[1] for row in rows] == documented
    assert len({row.end(2) for row in rows}) == 1, "the descriptions do not start in one column:\n" + lines.stdout
