"""Where the AWS container images live, per region: PyTorch training and inference, Debugger rules.

The account that hosts AWS's Deep Learning Containers differs in a few regions, so the image URI is
looked up, not formatted from one account. tests/unit/test_single_sources.py checks these tables
against the SageMaker Python SDK's own lookup for every region the SDK knows.
"""

from __future__ import annotations

TRAINING_IMAGE = ("pytorch-training", "2.8.0-cpu-py312")
INFERENCE_IMAGE = ("pytorch-inference", "2.6.0-cpu-py312")
DEBUGGER_RULES_IMAGE = ("sagemaker-debugger-rules", "latest")

DLC_ACCOUNTS = {
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-east-2": "975050140332",
    "ap-northeast-1": "763104351884",
    "ap-northeast-2": "763104351884",
    "ap-northeast-3": "364406365360",
    "ap-south-1": "763104351884",
    "ap-south-2": "772153158452",
    "ap-southeast-1": "763104351884",
    "ap-southeast-2": "763104351884",
    "ap-southeast-3": "907027046896",
    "ap-southeast-4": "457447274322",
    "ap-southeast-5": "550225433462",
    "ap-southeast-6": "633930458069",
    "ap-southeast-7": "590183813437",
    "ca-central-1": "763104351884",
    "ca-west-1": "204538143572",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
    "eu-central-1": "763104351884",
    "eu-central-2": "380420809688",
    "eu-north-1": "763104351884",
    "eu-south-1": "692866216735",
    "eu-south-2": "503227376785",
    "eu-west-1": "763104351884",
    "eu-west-2": "763104351884",
    "eu-west-3": "763104351884",
    "il-central-1": "780543022126",
    "me-central-1": "914824155844",
    "me-south-1": "217643126080",
    "mx-central-1": "637423239942",
    "sa-east-1": "763104351884",
    "us-east-1": "763104351884",
    "us-east-2": "763104351884",
    "us-gov-east-1": "446045086412",
    "us-gov-west-1": "442386744353",
    "us-west-1": "763104351884",
    "us-west-2": "763104351884",
}
DEBUGGER_RULE_ACCOUNTS = {
    "af-south-1": "314341159256",
    "ap-east-1": "199566480951",
    "ap-northeast-1": "430734990657",
    "ap-northeast-2": "578805364391",
    "ap-northeast-3": "479947661362",
    "ap-south-1": "904829902805",
    "ap-southeast-1": "972752614525",
    "ap-southeast-2": "184798709955",
    "ca-central-1": "519511493484",
    "cn-north-1": "618459771430",
    "cn-northwest-1": "658757709296",
    "eu-central-1": "482524230118",
    "eu-north-1": "314864569078",
    "eu-south-1": "563282790590",
    "eu-west-1": "929884845733",
    "eu-west-2": "250201462417",
    "eu-west-3": "447278800020",
    "me-south-1": "986000313247",
    "sa-east-1": "818342061345",
    "us-east-1": "503895931360",
    "us-east-2": "915447279597",
    "us-gov-west-1": "515509971035",
    "us-west-1": "685455198987",
    "us-west-2": "895741380848",
}


class UnsupportedRegionError(ValueError):
    """No AWS image of that kind is published in the region."""


def image_uri(repository_and_tag: tuple[str, str], region: str) -> str:
    """``<account>.dkr.ecr.<region>.<domain>/<repository>:<tag>`` for ``region``."""
    repository, tag = repository_and_tag
    accounts = DEBUGGER_RULE_ACCOUNTS if repository == DEBUGGER_RULES_IMAGE[0] else DLC_ACCOUNTS
    if region not in accounts:
        raise UnsupportedRegionError(f"AWS publishes no {repository} image in {region}")
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{accounts[region]}.dkr.ecr.{region}.{domain}/{repository}:{tag}"
