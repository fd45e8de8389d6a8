"""The pipeline's definition file: valid ASL (cfn-lint), a connected graph, tasks that exist and are allowed.

tests/integration/test_pipeline_executions.py executes the same file through every branch.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from offline_stack.sam_template import PROJECT_ROOT, SamTemplate

TEMPLATE = SamTemplate.load()
MACHINE = TEMPLATE.resource("TrainingPipeline")["Properties"]
DEFINITION_TEXT = (PROJECT_ROOT / MACHINE["DefinitionUri"]).read_text()
DEFINITION = json.loads(DEFINITION_TEXT)  # placeholders sit inside strings: the file is JSON before substitution
STATES = DEFINITION["States"]
POLICY = json.loads((PROJECT_ROOT / "policies/pipeline-state-machine.json").read_text())


def _targets(state: dict) -> list[str]:
    found = [state[key] for key in ("Next", "Default") if key in state]
    found += [choice["Next"] for choice in state.get("Choices", [])]
    found += [catch["Next"] for catch in state.get("Catch", [])]
    return found


def test_the_definition_is_valid_asl_for_cfn_lint(tmp_path: Path):
    # SAM's transform hides the definition from cfn-lint; lint it as a plain AWS::StepFunctions::StateMachine
    substitutions = {name: TEMPLATE.resolve(value) for name, value in MACHINE["DefinitionSubstitutions"].items()}
    # cfn-lint checks task ARNs before substitution, and only in the aws partition's spelling
    partition = substitutions.pop("Partition")
    definition = json.loads(DEFINITION_TEXT.replace("${Partition}", partition))
    native = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Pipeline": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "RoleArn": TEMPLATE.arn("TrainingPipelineRole"),
                    "Definition": definition,
                    "DefinitionSubstitutions": substitutions,
                },
            }
        },
    }
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps(native))
    result = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_transition_lands_on_a_state_and_every_state_is_reachable():
    assert DEFINITION["StartAt"] in STATES
    for name, state in STATES.items():
        for target in _targets(state):
            assert target in STATES, f"{name} -> {target}"
        if state["Type"] not in ("Choice", "Fail", "Succeed"):
            assert "Next" in state or state.get("End") is True, f"{name} has no way on"
    reached, frontier = set(), [DEFINITION["StartAt"]]
    while frontier:
        name = frontier.pop()
        if name not in reached:
            reached.add(name)
            frontier.extend(_targets(STATES[name]))
    assert reached == set(STATES)


def test_every_failure_carries_its_cause():
    for name, state in STATES.items():
        if state["Type"] == "Fail":
            assert "Cause" in state or "CausePath" in state, name
        if state["Type"] == "Task":
            assert any("States.ALL" in c["ErrorEquals"] for c in state.get("Catch", [])), f"{name} has no Catch"


@pytest.mark.parametrize("name", [n for n, s in STATES.items() if s["Type"] == "Task"])
def test_each_task_names_something_the_template_has_and_the_role_may_call(name):
    state = STATES[name]
    allowed = {
        action: statement["Resource"]
        for statement in POLICY["Statement"]
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    if state["Resource"] == "arn:${Partition}:states:::lambda:invoke":
        placeholder = re.fullmatch(r"\$\{(\w+)\}", state["Parameters"]["FunctionName"]).group(1)
        function = MACHINE["DefinitionSubstitutions"][placeholder]["Fn::GetAtt"][0]
        assert TEMPLATE.resource(function)["Type"] == "AWS::Serverless::Function"
        assert f"${{{function}.Arn}}" in allowed["lambda:InvokeFunction"]
    else:
        service, api = re.fullmatch(r"arn:\$\{Partition\}:states:::aws-sdk:(\w+):(\w+)", state["Resource"]).groups()
        assert f"{service}:{api[0].upper()}{api[1:]}" in allowed


def test_the_template_has_no_inline_definition_the_file_is_the_only_one():
    assert "Definition" not in MACHINE and MACHINE["DefinitionUri"] == "statemachine/pipeline.asl.json"
    assert set(re.findall(r"\$\{(\w+)\}", DEFINITION_TEXT)) == set(MACHINE["DefinitionSubstitutions"])


def test_no_arn_in_the_template_names_a_partition_of_its_own():
    # aws-cn and aws-us-gov ARNs start arn:aws-cn: and arn:aws-us-gov:; every ARN takes the stack's partition
    text = (PROJECT_ROOT / "template.yaml").read_text() + DEFINITION_TEXT
    assert not re.findall(r"arn:aws[:-]", text)
    assert MACHINE["DefinitionSubstitutions"]["Partition"] == {"Ref": "AWS::Partition"}
