"""CloudFormation as the offline stack imitates it: a stack update that would create a log group that exists.

Rules (``docs/aws-semantics.md`` lists each with its offline test):

- **A named resource that exists cannot be created.** An ``AWS::Logs::LogGroup`` with a ``LogGroupName`` fails to
  create when a group of that name exists, and the update rolls back, with "Resource of type 'AWS::Logs::LogGroup'
  with identifier '...' already exists" (the handler's answer as CloudFormation prints it: observed, an inference, no
  documented sentence). Source: CloudFormation user guide, "Name type"
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-name.html), on custom names.
- **SageMaker writes an endpoint's logs to ``/aws/sagemaker/Endpoints/<endpoint name>``**, creating the group when it
  is not there ("Amazon SageMaker AI ... sends ... logs to Amazon CloudWatch Logs": developer guide, "Log Amazon
  SageMaker AI events with Amazon CloudWatch",
  https://docs.aws.amazon.com/sagemaker/latest/dg/logging-cloudwatch.html). So a stack update that deletes the log
  group of an endpoint still serving leaves the group to SageMaker, outside the stack, and a later update that
  brings the resource back fails. That SageMaker re-creates it on its next write is an inference from the page's
  log-group naming and the issue's observation, not a documented sentence.
"""

from __future__ import annotations

from collections.abc import Iterable

ENDPOINT_LOG_GROUP_PREFIX = "/aws/sagemaker/Endpoints/"


def endpoint_log_group(endpoint_name: str) -> str:
    """Where SageMaker writes an endpoint's container logs."""
    return f"{ENDPOINT_LOG_GROUP_PREFIX}{endpoint_name}"


def log_group_names(template) -> set[str]:
    """The named log groups a ``SamTemplate`` creates with its parameters (resources whose Condition is false
    left out)."""
    return {
        template.resolve(resource["Properties"]["LogGroupName"])
        for resource in template.rendered()["Resources"].values()
        if resource["Type"] == "AWS::Logs::LogGroup" and "LogGroupName" in resource.get("Properties", {})
    }


def left_to_sagemaker(before: set[str], after: set[str], serving_endpoints: Iterable[str]) -> set[str]:
    """Log groups an update deletes while their endpoint serves: SageMaker writes them again, outside the stack."""
    serving = {endpoint_log_group(name) for name in serving_endpoints}
    return (before - after) & serving


def update_refusal(before: set[str], after: set[str], outside_the_stack: set[str]) -> str:
    """Why CloudFormation would fail this update ("" when it would not): it creates a log group that exists."""
    existing = sorted((after - before) & outside_the_stack)
    if not existing:
        return ""
    return (
        f"UPDATE_ROLLBACK_COMPLETE: Resource of type 'AWS::Logs::LogGroup' with identifier '{existing[0]}' already "
        "exists (a stack update deleted it while its endpoint served, and SageMaker wrote it again)"
    )
