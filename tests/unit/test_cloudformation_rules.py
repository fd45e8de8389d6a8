"""A stack update that would create a log group SageMaker wrote outside the stack fails, as CloudFormation fails it
(offline_stack/aws_rules/cloudformation.py); the template keeps every endpoint log group under both kinds."""

from __future__ import annotations

from offline_stack.aws_rules.cloudformation import (
    endpoint_log_group,
    left_to_sagemaker,
    log_group_names,
    update_refusal,
)
from offline_stack.sam_template import SamTemplate

INSTANCES = SamTemplate.load(overrides={"EndpointKind": "instances"})
SERVERLESS = SamTemplate.load(overrides={"EndpointKind": "serverless"})
ENDPOINT = INSTANCES.parameters["EndpointName"]


def test_both_kinds_keep_both_endpoints_log_groups_so_a_switch_deletes_none():
    groups = {endpoint_log_group(ENDPOINT), endpoint_log_group(f"{ENDPOINT}-serverless")}
    assert groups <= log_group_names(INSTANCES)
    assert log_group_names(INSTANCES) == log_group_names(SERVERLESS)


def test_a_log_group_deleted_while_its_endpoint_serves_fails_the_update_that_brings_it_back():
    # The template as it was: the serverless group only under EndpointKind=serverless
    serverless_only = endpoint_log_group(f"{ENDPOINT}-serverless")
    with_group = log_group_names(SERVERLESS)
    without = with_group - {serverless_only}
    # serverless -> instances: the group goes while the serverless endpoint still serves (until the switch ends)
    outside = left_to_sagemaker(with_group, without, serving_endpoints=[f"{ENDPOINT}-serverless", ENDPOINT])
    assert outside == {serverless_only}
    assert update_refusal(without, with_group, outside).startswith("UPDATE_ROLLBACK_COMPLETE: Resource of type ")
    assert serverless_only in update_refusal(without, with_group, outside)
    # a group whose endpoint was gone when it was deleted is not written again: no refusal
    assert left_to_sagemaker(with_group, without, serving_endpoints=[ENDPOINT]) == set()
    assert update_refusal(without, with_group, set()) == ""
