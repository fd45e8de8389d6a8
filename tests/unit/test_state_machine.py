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

from offline_stack.aws_rules.step_functions import EVENTS_PER_STATE, HISTORY_EVENT_LIMIT, training_poll_events
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


def _poll_as_deployed() -> dict[str, float]:
    """The ``$.poll`` values ReadInput makes from the template's substitutions (what AWS runs)."""
    substitutions = MACHINE["DefinitionSubstitutions"]
    return {
        "training_seconds": float(substitutions["TrainingPollSeconds"]),
        "training_step_seconds": float(substitutions["TrainingPollSeconds"]),
        "training_max_seconds": float(substitutions["TrainingPollMaxSeconds"]),
        "endpoint_seconds": float(substitutions["EndpointPollSeconds"]),
    }


def test_the_longest_spot_job_stays_far_inside_the_execution_history_limit():
    # A spot job may wait twice its longest runtime: MaxWaitTimeInSeconds = 2 x the template's maximum of 28 days
    # would be absurd; the default (24 h) gives 48 h, the case the review measured.
    longest_default_spot = 2 * int(TEMPLATE.parameters["TrainingMaxRuntimeSeconds"])
    events, interval = training_poll_events(DEFINITION, _poll_as_deployed(), longest_default_spot)
    assert interval == float(MACHINE["DefinitionSubstitutions"]["TrainingPollMaxSeconds"])
    assert events < HISTORY_EVENT_LIMIT / 5, events  # the rest of the pipeline writes well under 100
    print(f"\n48 h training job: {events} history events in the poll loop ({events / 48:.0f} per hour)")


def test_polling_every_minute_without_slowing_down_would_have_failed_a_48_hour_job():
    steady = {**_poll_as_deployed(), "training_max_seconds": _poll_as_deployed()["training_seconds"]}
    events, _ = training_poll_events(DEFINITION, steady, 48 * 3600)
    assert events > HISTORY_EVENT_LIMIT


@pytest.mark.parametrize(
    "name", ["DescribeTrainingJob", "ReadTrainingFailure", "DescribeEndpoint", "ReadEndpointFailure"]
)
def test_every_describe_is_retried_when_sagemaker_throttles(name):
    retried = {error for retry in STATES[name].get("Retry", []) for error in retry["ErrorEquals"]}
    assert "SageMaker.ThrottlingException" in retried


def test_a_retried_training_start_carries_the_execution_name_as_its_idempotency_token():
    assert STATES["ReadInput"]["Parameters"]["defaults"]["run"] == {"idempotency_token.$": "$$.Execution.Name"}
    assert STATES["StartTraining"]["Parameters"]["Payload.$"] == "States.JsonMerge($.training, $.run, false)"


def test_an_endpoint_whose_update_and_rollback_both_failed_ends_the_pipeline_instead_of_polling_forever():
    choices = {c.get("StringEquals"): c["Next"] for c in STATES["EndpointReady"]["Choices"] if "Variable" in c}
    assert STATES[choices["UpdateRollbackFailed"]]["Type"] == "Fail"
    assert STATES[choices["Failed"]]["Type"] == "Task"  # reads the FailureReason, then fails


def test_every_execution_is_logged_without_its_data_and_traced():
    machine = TEMPLATE.resource("TrainingPipeline")["Properties"]
    assert machine["Tracing"] == {"Enabled": True}
    logging = machine["Logging"]
    assert (logging["Level"], logging["IncludeExecutionData"]) == ("ALL", False)
    destination = logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"]
    assert destination == {"Fn::GetAtt": ["TrainingPipelineLogGroup", "Arn"]}
    group = TEMPLATE.resource("TrainingPipelineLogGroup")["Properties"]
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    # And the role may deliver the logs and the traces (actions without resource-level permissions)
    actions = (statement["Action"] for statement in POLICY["Statement"])
    allowed = {action for listed in actions for action in (listed if isinstance(listed, list) else [listed])}
    assert {"logs:CreateLogDelivery", "logs:PutResourcePolicy", "xray:PutTraceSegments"} <= allowed


def test_the_events_each_state_writes_are_counted_from_entered_to_exited():
    from offline_stack.aws_rules.step_functions import events_by_state_type

    def entered(name: str) -> dict:
        return {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": name}}

    history = [
        {"type": "ExecutionStarted"},  # before any state: not counted
        entered("Deploy"),
        {"type": "TaskScheduled"},
        {"type": "TaskStarted"},
        {"type": "TaskSucceeded"},
        {"type": "TaskStateExited"},
        entered("Wait"),
        {"type": "WaitStateExited"},
        entered("Deploy"),
        {"type": "TaskScheduled"},
        {"type": "TaskStarted"},
        {"type": "TaskSucceeded"},
        {"type": "TaskStateExited"},
        {"type": "ExecutionSucceeded"},  # after the last state: not counted
    ]
    runs = events_by_state_type(history, {"Deploy": "Task", "Wait": "Wait"})
    assert runs == {("Task", 5): 2, ("Wait", 2): 1}


def test_a_poll_loop_whose_wait_never_grows_fails_at_the_history_limit_instead_of_running_forever():
    # Given the deployed loop with intervals of 0 s (its MathAdd adds nothing): the waits never reach the job's end
    stalled = {**_poll_as_deployed(), "training_seconds": 0.0, "training_step_seconds": 0.0}
    events, interval = training_poll_events(DEFINITION, stalled, 3600)
    # Then the count stops just past the limit, where AWS fails the execution
    assert HISTORY_EVENT_LIMIT < events <= HISTORY_EVENT_LIMIT + max(EVENTS_PER_STATE.values()) and interval == 0.0


def test_a_loop_still_polling_at_exactly_the_history_limit_has_failed():
    # Given a loop of one 0 s Wait (2 events a turn), whose count lands on 25,000 exactly with the job running
    spinning = {
        "States": {
            "WaitForTraining": {"Type": "Wait", "SecondsPath": "$.poll.training_seconds", "Next": "WaitForTraining"}
        }
    }
    events, _ = training_poll_events(spinning, {"training_seconds": 0.0}, 60)
    # Then its next state's events are past the limit: that is where AWS fails the execution
    assert events == HISTORY_EVENT_LIMIT + 2


def test_a_job_done_before_the_first_poll_writes_no_poll_events():
    assert training_poll_events(DEFINITION, _poll_as_deployed(), 0)[0] == 0
    assert training_poll_events(DEFINITION, _poll_as_deployed(), 1)[0] > 0
