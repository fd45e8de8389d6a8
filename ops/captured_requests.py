"""``make captured``: what the endpoint was asked, and what it answered, from its data capture.

Reads the newest JSON Lines files SageMaker wrote under ``data-capture/<endpoint>/`` in the artifacts bucket
and prints one line per captured request: when, the input's content type and size, and the top predictions.

    python -m ops.captured_requests --bucket BUCKET [--endpoint-name dog-breed-classifier] [--limit 20]

Needs s3:ListBucket on the data-capture/ prefix and s3:GetObject under it (your own credentials).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from dataclasses import dataclass

import boto3

from dog_breeds.deploy_endpoint import DATA_CAPTURE_PREFIX


@dataclass(frozen=True)
class CapturedRequest:
    time: str
    content_type: str
    input_bytes: int
    predictions: list[dict]


def captured_requests(s3, bucket: str, endpoint_name: str, limit: int = 20) -> list[CapturedRequest]:
    """The newest ``limit`` captured requests of ``endpoint_name``, newest first."""
    prefix = f"{DATA_CAPTURE_PREFIX}/{endpoint_name}/"
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
        if item["Key"].endswith(".jsonl")
    ]
    found: list[CapturedRequest] = []
    for key in sorted(keys, reverse=True):  # the key's path is its time, so this is newest first
        lines = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
        found += sorted((_read(line) for line in lines if line.strip()), key=lambda r: r.time, reverse=True)
        if len(found) >= limit:
            break
    return found[:limit]


def _read(line: str) -> CapturedRequest:
    record = json.loads(line)
    data = record.get("captureData", {})
    request, answer = data.get("endpointInput", {}), data.get("endpointOutput", {})
    size = (
        len(base64.b64decode(request["data"])) if request.get("encoding") == "BASE64" else len(request.get("data", ""))
    )
    predictions = []
    if answer.get("encoding") == "JSON":
        predictions = json.loads(answer["data"]).get("predictions", [])
    elif answer.get("encoding") == "BASE64":
        predictions = json.loads(base64.b64decode(answer["data"])).get("predictions", [])
    return CapturedRequest(
        record.get("eventMetadata", {}).get("inferenceTime", "?"),
        request.get("observedContentType", "?"),
        size,
        predictions,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bucket", required=True, help="the stack's ArtifactsBucketName output")
    parser.add_argument("--endpoint-name", default="dog-breed-classifier")
    parser.add_argument("--limit", type=int, default=20)
    args = parser.parse_args(argv)
    if not args.bucket:
        parser.error("--bucket (make captured BUCKET=...) is required: the stack's ArtifactsBucketName output")
    if args.limit < 1:
        parser.error("--limit must be at least 1")
    requests = captured_requests(boto3.client("s3"), args.bucket, args.endpoint_name, args.limit)
    if not requests:
        print(f"nothing captured under s3://{args.bucket}/{DATA_CAPTURE_PREFIX}/{args.endpoint_name}/ yet")
        return 1
    for request in requests:
        top = ", ".join(f"{p['breed']} {p['probability']:.2f}" for p in request.predictions[:3]) or "(no predictions)"
        print(f"{request.time}  {request.content_type:16} {request.input_bytes:>9} bytes  {top}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
