"""The prediction use case: a decoded request in, breed predictions out. Knows nothing of events."""

from __future__ import annotations

from dataclasses import dataclass

from dog_breeds.errors import EndpointNotInServiceError, EndpointStartingError, EndpointTimeoutError
from dog_breeds.image_request import ImageRequest, UrlRequest, sniff_image_type
from dog_breeds.ports import EndpointRuntime, ImageDownload, Prediction
from dog_breeds.settings import PredictSettings


@dataclass
class PredictBreeds:
    """Answers prediction requests through one endpoint runtime, created once and handed in.

    ``download`` fetches ``{"url": ...}`` images (``adapters.image_download.download_image`` unless a
    test hands in another); it is imported on first use, since most requests never fetch a URL.
    """

    settings: PredictSettings
    endpoint: EndpointRuntime
    download: ImageDownload | None = None

    def __call__(self, request: ImageRequest | UrlRequest) -> list[Prediction]:
        if isinstance(request, UrlRequest):
            image = self._download()(request.url, self.settings.url_allowed_hosts, self.settings.image_limit_bytes)
            request = ImageRequest(image=image, content_type=sniff_image_type(image), top_k=request.top_k)
        try:
            return self._predict(request)
        except EndpointTimeoutError as exc:
            # A serverless endpoint that does not answer within the wait is starting (a cold start can take up to
            # 3 minutes, past API Gateway's 30 s): one attempt, then a 503 with Retry-After, never a retried call
            # that would queue behind the start or start another (docs/aws-semantics.md, docs/capacity-and-cost.md)
            if self.settings.endpoint_kind != "serverless":
                raise
            raise EndpointStartingError(str(exc)) from exc

    def _predict(self, request: ImageRequest) -> list[Prediction]:
        try:
            return self.endpoint.predict(
                self.settings.endpoint_name, request.image, request.content_type, request.top_k
            )
        except EndpointNotInServiceError:
            # A kind switch (EndpointKind) is under way: the stack names the new endpoint before the pipeline has
            # brought it into service, and the old one serves until then (it is deleted only after).
            fallback = self.settings.fallback_endpoint_name
            if not fallback:
                raise
            return self.endpoint.predict(fallback, request.image, request.content_type, request.top_k)

    def _download(self) -> ImageDownload:
        if self.download is None:
            from dog_breeds.adapters.image_download import download_image

            self.download = download_image
        return self.download
