"""One way to make a control-plane call: AWS's refusals and unreachability become project errors."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from dog_breeds.errors import AwsRequestRefusedError, AwsUnreachableError


def call_aws(service: str, client, operation: str, absent_codes: tuple[str, ...] = (), **parameters) -> dict | None:
    """``client.<operation>(**parameters)``; raises ``AwsRequestRefusedError`` with AWS's own reason.

    An error whose code is in ``absent_codes`` means "no such resource" and returns ``None`` instead.
    """
    try:
        return getattr(client, operation)(**parameters)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") in absent_codes:
            return None
        raise AwsRequestRefusedError(
            f"{service} {operation} refused: {error.get('Code')}: {error.get('Message')}"
        ) from exc
    except BotoCoreError as exc:
        raise AwsUnreachableError(f"{service} {operation} could not be sent: {exc}") from exc
