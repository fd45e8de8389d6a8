"""Execute the pipeline's own definition (statemachine/pipeline.asl.json) offline, and follow its executions.

moto's Step Functions interpreter runs the ASL as CloudFormation would deploy it (the template's
``DefinitionSubstitutions``, with the poll intervals at 1 s instead of 60). Its ``lambda:invoke`` tasks reach
the template's functions through the control plane's Lambda Invoke route (each invocation a fresh
execution environment, as ``OfflineStack.invoke``), and its ``aws-sdk:sagemaker`` tasks reach moto, whose
jobs and endpoints ``Lifecycles`` moves through their real states.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

OFFLINE_POLL_SECONDS = {"TrainingPollSeconds": "1", "TrainingPollMaxSeconds": "3", "EndpointPollSeconds": "1"}
_FINISHED = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


@dataclass
class Execution:
    arn: str
    status: str
    states: list[str] = field(default_factory=list)  # entered, in order
    output: dict | None = None
    error: str | None = None
    cause: str | None = None
    history: list[dict] = field(default_factory=list)  # every history event; AWS fails an execution at 25,000


class PipelineRuns:
    """The template's TrainingPipeline in the offline stack's control plane; one per stack."""

    def __init__(self, stack) -> None:
        self.stack = stack
        template = stack.template
        self._functions = {
            template.physical_id(logical_id): logical_id
            for logical_id, resource in template.resources.items()
            if resource["Type"] == "AWS::Serverless::Function"
        }
        self._invocations = threading.Lock()  # one execution environment at a time: they share os.environ
        # The interpreter logs every Fail state as an error with its parse tree; follow() reports the outcome.
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
        control_plane = stack.control_plane
        control_plane.serve_functions(self._invoke)
        control_plane.emulate_lifecycles()
        control_plane.enable_state_machine_executions()
        self.sfn = control_plane.client("stepfunctions")
        self.definition = template.state_machine_definition("TrainingPipeline", OFFLINE_POLL_SECONDS)
        self.state_machine_arn = self.sfn.create_state_machine(
            name=template.physical_id("TrainingPipeline"),
            definition=self.definition,
            roleArn=template.arn("TrainingPipelineRole"),
        )["stateMachineArn"]

    def start(self, pipeline_input: dict | None = None) -> str:
        # Named here: moto names every unnamed execution "None", where Step Functions makes up a unique name
        name = f"offline-{uuid.uuid4().hex[:16]}"
        return self.sfn.start_execution(
            stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(pipeline_input or {})
        )["executionArn"]

    def run(
        self, pipeline_input: dict | None = None, say: Callable[[str], None] = print, timeout_seconds: float = 900
    ) -> Execution:
        """Start an execution and follow it to its end, saying each state as it is entered."""
        return self.follow(self.start(pipeline_input), say, timeout_seconds)

    def follow(self, arn: str, say: Callable[[str], None] = print, timeout_seconds: float = 900) -> Execution:
        execution, seen, repeats = Execution(arn, "RUNNING"), 0, 0
        deadline = time.monotonic() + timeout_seconds
        while True:
            status = self.sfn.describe_execution(executionArn=arn)["status"]
            events = self._history(arn)
            for event in events[seen:]:
                if event["type"].endswith("StateEntered"):
                    name = event["stateEnteredEventDetails"]["name"]
                    if name in execution.states:  # a polling loop going round: said once, counted
                        repeats += 1
                    else:
                        if repeats:
                            say(f"         (polled: {repeats} states again)")
                        repeats = 0
                        say(f"      -> {name}")
                    execution.states.append(name)
            seen = len(events)
            if status in _FINISHED:
                break
            if time.monotonic() > deadline:
                self.sfn.stop_execution(executionArn=arn, error="OfflineTimeout", cause=f"over {timeout_seconds} s")
                raise TimeoutError(f"pipeline execution {arn} still {status} after {timeout_seconds} s")
            time.sleep(0.2)
        final = self.sfn.describe_execution(executionArn=arn)
        execution.status, execution.error, execution.cause = final["status"], final.get("error"), final.get("cause")
        execution.output = json.loads(final["output"]) if final.get("output") else None
        execution.history = self._history(arn)
        return execution

    def _history(self, arn: str) -> list[dict]:
        pages = self.sfn.get_paginator("get_execution_history").paginate(executionArn=arn)
        return [event for page in pages for event in page["events"]]

    def _invoke(self, function_name: str, event: dict) -> dict:
        logical_id = self._functions.get(function_name)
        if logical_id is None:
            raise LookupError(f"the template has no function named {function_name}")
        with self._invocations:
            return self.stack.invoke(logical_id, event)
