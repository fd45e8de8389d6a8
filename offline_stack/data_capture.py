"""SageMaker's endpoint data capture, offline: sampled requests and answers as JSON Lines in the bucket.

Same layout and record format as SageMaker writes them (so ``ops/captured_requests.py`` reads both):
``<DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/<time>-<id>.jsonl``, one record per request with
``captureData.endpointInput`` / ``endpointOutput`` (``JSON`` for the configured JSON content types, else
``BASE64``) and ``eventMetadata``. SageMaker writes a file every few minutes; offline, every flush (each second).
"""

from __future__ import annotations

import base64
import json
import random
import threading
import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit


class DataCapture:
    def __init__(self, s3, endpoint_name: str, variant: str, config: dict) -> None:
        self.s3, self.endpoint_name, self.variant = s3, endpoint_name, variant
        self.percent = config.get("InitialSamplingPercentage", 0)
        modes = {option["CaptureMode"] for option in config.get("CaptureOptions", [])}
        self.capture_input, self.capture_output = "Input" in modes, "Output" in modes
        self.json_types = set(config.get("CaptureContentTypeHeader", {}).get("JsonContentTypes", []))
        destination = urlsplit(config["DestinationS3Uri"])
        self.bucket, self.prefix = destination.netloc, destination.path.strip("/")
        self.key_id = config.get("KmsKeyId")
        self._records: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, body: bytes, content_type: str, answer: bytes, answer_type: str) -> None:
        if random.uniform(0, 100) >= self.percent:  # noqa: S311 (sampling, not security)
            return
        data = {}
        if self.capture_input:
            data["endpointInput"] = self._field("INPUT", body, content_type)
        if self.capture_output:
            data["endpointOutput"] = self._field("OUTPUT", answer, answer_type)
        metadata = {"eventId": str(uuid.uuid4()), "inferenceTime": datetime.now(UTC).isoformat(timespec="milliseconds")}
        with self._lock:
            self._records.append(json.dumps({"captureData": data, "eventMetadata": metadata, "eventVersion": "0"}))

    def flush(self) -> str | None:
        """Write what was captured since the last flush as one object; returns its key (None if nothing)."""
        with self._lock:
            records, self._records = self._records, []
        if not records:
            return None
        now = datetime.now(UTC)
        folder = f"{self.prefix}/{self.endpoint_name}/{self.variant}/{now:%Y/%m/%d/%H}"
        key = f"{folder}/{now:%M-%S-%f}-{uuid.uuid4().hex[:8]}.jsonl"
        # with the key the endpoint config names (DataCaptureConfig.KmsKeyId), as SageMaker writes them
        encryption = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.key_id} if self.key_id else {}
        self.s3.put_object(Bucket=self.bucket, Key=key, Body="\n".join(records).encode() + b"\n", **encryption)
        return key

    def _field(self, mode: str, data: bytes, content_type: str) -> dict:
        media_type = content_type.split(";")[0].strip()
        if media_type in self.json_types:
            return {
                "observedContentType": content_type,
                "mode": mode,
                "data": data.decode("utf-8", "replace"),
                "encoding": "JSON",
            }
        return {
            "observedContentType": content_type,
            "mode": mode,
            "data": base64.b64encode(data).decode(),
            "encoding": "BASE64",
        }
