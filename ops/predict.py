"""One signed prediction from a deployed stack, with whatever credentials the AWS SDK finds: `make predict`.

    python -m ops.predict --image dog.jpg [--stack-name NAME] [--region REGION] [--top-k 3]   # `make deploy`'s stack
    python -m ops.predict --image dog.jpg --stage testing|prod [--branch BRANCH]              # a pipeline stage's
    python -m ops.predict --image dog.jpg --api-url https://<id>.execute-api.<region>.amazonaws.com [--token JWT]

The API's default ``AuthMode=IAM`` wants requests signed with SigV4 for ``execute-api``. curl's ``--aws-sigv4``
needs the keys exported, which an SSO or profile user does not have; this signs with botocore's own credential
chain (environment, ``AWS_PROFILE`` and its SSO session, container or instance role), so it works wherever the AWS
CLI does. ``--token`` sends a bearer token instead (``AuthMode=JWT``); ``--unsigned`` sends neither
(``AuthMode=NONE``). It prints the status, the ``X-Request-Id`` and the answer's JSON; it exits 1 on any answer but
a 200.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

from ops.stages import STAGES, read_stage

DEFAULT_STACK = "dog-breed-classifier"  # samconfig.toml's [default] stack_name: what `make deploy` makes
CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}


def signed_headers(url: str, body: bytes, headers: dict[str, str], region: str) -> dict[str, str]:
    """``headers`` with SigV4 for ``execute-api`` added, from the SDK's credential chain."""
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    credentials = botocore.session.get_session().get_credentials()
    if credentials is None:
        raise SystemExit(
            "error: no AWS credentials found (environment, AWS_PROFILE, SSO or an instance role): "
            "`aws sso login` or `aws configure` first, or give --token / --unsigned for AuthMode=JWT / NONE"
        )
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(credentials.get_frozen_credentials(), "execute-api", region).add_auth(request)
    return dict(request.headers)


def predict(api_url: str, image: bytes, content_type: str, top_k: int, sign_for: str | None, token: str | None):
    """(status, request id, answer) for one POST /predictions."""
    url = f"{api_url.rstrip('/')}/predictions?top_k={top_k}"
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif sign_for:
        headers = signed_headers(url, image, headers, sign_for)
    request = urllib.request.Request(url, data=image, headers=headers, method="POST")  # noqa: S310 (the API's URL)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310 (the API's URL)
            return answer.status, answer.headers.get("X-Request-Id"), json.loads(answer.read())
    except urllib.error.HTTPError as refusal:
        body = refusal.read()
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = {"body": body.decode("utf-8", "replace")}
        return refusal.code, refusal.headers.get("X-Request-Id"), parsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", type=Path, required=True, help="a JPEG or PNG photo")
    parser.add_argument("--api-url", help="the stack's PredictionsApiUrl output (else read from the stack)")
    parser.add_argument("--stack-name", help=f"the stack to read PredictionsApiUrl from (default {DEFAULT_STACK})")
    parser.add_argument("--region", help="the stack's Region (default: the stage's, or the SDK's)")
    parser.add_argument("--stage", choices=STAGES, help="a pipeline stage's stack, from samconfig.toml")
    parser.add_argument("--branch", default="", help="with --stage: a feature branch's own stack")
    parser.add_argument("--top-k", type=int, default=3, help="how many breeds to answer, 1-20 (default 3)")
    parser.add_argument("--token", help="a bearer token, for AuthMode=JWT")
    parser.add_argument("--unsigned", action="store_true", help="send no credentials (AuthMode=NONE)")
    args = parser.parse_args(argv)
    content_type = CONTENT_TYPES.get(args.image.suffix.lower())
    if content_type is None:
        parser.error(f"--image {args.image}: a photo ending {', '.join(CONTENT_TYPES)} (the API takes JPEG and PNG)")
    if not args.image.is_file():
        parser.error(f"--image {args.image}: no such file")
    if not 1 <= args.top_k <= 20:
        parser.error(f"--top-k {args.top_k}: the API answers 1 to 20 breeds")
    region, api_url = args.region, args.api_url
    if api_url is None:
        import botocore.session

        from ops.stack_outputs import stack_outputs

        stack_name = args.stack_name or DEFAULT_STACK
        if args.stage:
            stage = read_stage(args.stage, branch=args.branch or None)
            stack_name, region = stage.stack_name, region or stage.region
        region = region or botocore.session.get_session().get_config_variable("region")
        if not region:
            parser.error("no Region: give --region, or set AWS_REGION or your profile's region")
        api_url = stack_outputs(stack_name, region)["PredictionsApiUrl"]
    if region is None:  # the API's own host names it: <id>.execute-api.<region>.amazonaws.com
        region = api_url.split("//", 1)[-1].split(".")[2] if ".execute-api." in api_url else "us-east-1"
    sign_for = None if (args.unsigned or args.token) else region
    status, request_id, answer = predict(
        api_url, args.image.read_bytes(), content_type, args.top_k, sign_for, args.token
    )
    print(f"{status} (X-Request-Id: {request_id})")
    print(json.dumps(answer, indent=2))
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
