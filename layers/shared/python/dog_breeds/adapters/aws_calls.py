"""One way to make a control-plane call: AWS's refusals and unreachability become project errors."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dog_breeds.errors import AwsRequestRefusedError, AwsUnreachableError
from dog_breeds.ports import AwsDocument


def call_aws(service: str, client: Any, operation: str, **parameters: Any) -> AwsDocument:
    """``client.<operation>(**parameters)``; raises ``AwsRequestRefusedError`` with AWS's own reason."""
    try:
        return getattr(client, operation)(**parameters)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise AwsRequestRefusedError(
            f"{service} {operation} refused: {error.get('Code')}: {error.get('Message')}"
        ) from exc
    except BotoCoreError as exc:
        raise AwsUnreachableError(f"{service} {operation} could not be sent: {exc}") from exc


def describe_aws(
    service: str, client: Any, operation: str, absent_codes: tuple[str, ...], **names: Any
) -> AwsDocument | None:
    """``call_aws``, except that an error whose code is in ``absent_codes`` means "no such resource": ``None``."""
    try:
        return call_aws(service, client, operation, **names)
    except AwsRequestRefusedError as exc:
        cause = exc.__cause__
        if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") in absent_codes:
            return None
        raise
