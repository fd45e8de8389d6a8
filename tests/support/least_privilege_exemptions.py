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
    "DeliverExecutionLogsHasNoResourceLevelPermissions": "used by Step Functions itself when it sets up the "
    "execution log's delivery (a state machine with a LoggingConfiguration); moto's interpreter writes no log",
    "CreateTheSageMakerAutoScalingServiceLinkedRole": "created once per account by Application Auto Scaling; moto "
    "has no service-linked roles",
}
# Every role has an enforced scenario: the state machine's too, since the control plane holds the interpreter's
# signed task requests to its policy (aws_rules/iam.py, STATE_MACHINE_INTERPRETER_KEY).
ROLES_NOT_ENFORCED_OFFLINE: dict[str, str] = {}
