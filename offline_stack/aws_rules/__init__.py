"""AWS's rules that the offline stack imitates, one module per service, each rule citing the AWS document it is from.

The offline stack must say no where AWS says no, and count what AWS counts, so that a test passing offline is
evidence about a real account. moto is kinder than AWS in places (it updates a Failed endpoint, it counts no
metric, it has no quotas); the modules here add AWS's behaviour where the project depends on it:

- ``cloudwatch``: what a SageMaker endpoint's invocation metrics count, and how an alarm (metric math and
  percentiles included) reads them;
- ``sagemaker``: endpoint state rules, the endpoint-instance quota during blue/green, training job names;
- ``step_functions``: the execution-history budget of a Standard workflow;
- ``api_gateway``: what an HTTP API answers for throttling, malformed framing and unknown methods;
- ``iam``: each role held to its policy (and permissions boundary) on the real resource ARNs;
- ``sts`` and ``github``: the release pipeline's identities: the OIDC token GitHub issues a job, the trust it must
  pass, the session it gets, and what an artifact carries between jobs;
- ``s3`` and ``kms``: the artifacts bucket's Denies, for every principal, and its key's policy on every object;
- ``cloudformation``: a stack update that would create a log group SageMaker wrote outside the stack.

``docs/aws-semantics.md`` lists every rule with AWS's words and URL (or says it is an inference) and the offline test
that holds it; ``tests/unit/test_aws_semantics_table.py`` fails when a public name here has no row.
"""
