"""What SageMaker names look like, and the tags on everything the project creates: one home for each.

The settings, the control-plane events and the logic all check names against these patterns (use them
with ``fullmatch``); every resource the functions create carries ``PROJECT_TAG``.
"""

from __future__ import annotations

import re

# SageMaker spells endpoint ARNs with the name in lower case, and IAM compares resources case-sensitively:
# a mixed-case endpoint name would be denied by the function's own policy. So endpoint names are lower case.
ENDPOINT_NAME = re.compile(r"[a-z0-9](-*[a-z0-9]){0,62}")
TRAINING_JOB_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
INSTANCE_TYPE = re.compile(r"ml\.[a-z0-9]+\.[a-z0-9]+")
MODEL_PACKAGE_ARN = re.compile(r"arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:[0-9]{12}:model-package/[a-z0-9-]+/[0-9]+")

PROJECT_TAG = {"Key": "project", "Value": "dog-breed-classifier"}


def tags(launched_by: str | None = None) -> list[dict[str, str]]:
    """The project's tag, and who launched the resource when that is worth telling apart (jobs)."""
    return [PROJECT_TAG, *([{"Key": "launched-by", "Value": launched_by}] if launched_by else [])]
