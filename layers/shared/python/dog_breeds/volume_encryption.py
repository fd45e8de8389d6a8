"""Which ML storage volumes SageMaker encrypts with the stack's KMS key.

A training job's and an instance endpoint's ML storage volumes take the artifacts key (``ResourceConfig.
VolumeKmsKeyId``, ``CreateEndpointConfig.KmsKeyId``) unless the instance type has local storage, where AWS refuses
it: "Certain Nitro-based instances include local storage, dependent on the instance type. Local storage volumes are
encrypted using a hardware module on the instance. You can't request a VolumeKmsKeyId when using an instance type
with local storage" (SageMaker API reference, ResourceConfig; CreateEndpointConfig says the same of KmsKeyId: "If you
specify a value for KmsKeyId when using any nitro-based instances with local storage, the call to
CreateEndpointConfig fails").

The families below are the ones the project's policies allow (``sagemaker:InstanceTypes`` in
policies/start-training-function.json and policies/deploy-endpoint-function.json) that have EBS storage only (EC2
user guide, "Instance store volumes": t2, t3, m5, m6i, c5 and c6i list none; g4dn and g5 have NVMe instance store).
A family not listed gets no key rather than a refused request.
"""

from __future__ import annotations

EBS_ONLY_FAMILIES = frozenset({"t2", "t3", "m5", "m6i", "c5", "c6i"})


def takes_volume_key(instance_type: str) -> bool:
    """Whether SageMaker accepts a KMS key for the storage volume of ``instance_type`` (``ml.<family>.<size>``)."""
    parts = instance_type.split(".")
    return len(parts) == 3 and parts[0] == "ml" and parts[1] in EBS_ONLY_FAMILIES
