"""The statements and roles the least-privilege suite does not exercise offline, each with the reason.

tests/integration/test_least_privilege.py runs every other statement of every role's policy and removes it to see the
role meet AccessDenied; tests/unit/test_exempt_statements.py pins the exact shape of every statement listed here (its
actions, resources and conditions), so an exemption cannot quietly grow.
"""

LOGS_AND_TRACES = "written by the Lambda runtime and the X-Ray daemon in AWS; offline the functions log to the terminal"
AWS_SIDE = (
    "used by SageMaker itself in AWS (its containers' images, logs and metrics); offline the containers are local"
)
NOT_EXERCISED_OFFLINE = {
    "WriteOwnLogs": LOGS_AND_TRACES,
    "SendTracesXRayHasNoResourceLevelPermissions": LOGS_AND_TRACES,
    "EcrAuthorizationTokensHaveNoResourceLevelPermissions": AWS_SIDE,
    "PullTheAwsPyTorchTrainingAndDebuggerImagesFromAwsAccountsOnly": AWS_SIDE,
    "PullTheAwsPyTorchInferenceImageFromAwsAccountsOnly": AWS_SIDE,
    "WriteEndpointLogs": AWS_SIDE,
    "WriteTransformJobLogs": AWS_SIDE,
    "ListWhereModelsAre": "SageMaker may list the model's prefix (a missing artifact then reads as missing, not "
    "forbidden); the offline endpoint fetches the one object",
    "WriteSageMakerLogs": AWS_SIDE,
    "PublishSageMakerMetrics": AWS_SIDE,
    "CreateTheSageMakerAutoScalingServiceLinkedRole": "created once per account by Application Auto Scaling; moto "
    "has no service-linked roles",
}
# moto's Step Functions interpreter runs the pipeline's tasks as the operator; tests/unit/test_state_machine.py
# holds every task to this role's policy instead.
ROLES_NOT_ENFORCED_OFFLINE = {"TrainingPipelineRole": "moto's interpreter does not sign as the state machine's role"}
