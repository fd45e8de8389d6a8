"""GET / (the web page) and GET /openapi.json (the API's contract): two files of the layer, answered by a function
of their own so that page loads never take the prediction function's reserved concurrency (see
docs/capacity-and-cost.md, "Concurrency and throttling"); the stage throttles their routes on their own too
(PageThrottle* parameters)."""

from dog_breeds.http_api import answer_document_request
from dog_breeds.settings import PageSettings

settings = PageSettings.from_environment()


def lambda_handler(event: dict, context) -> dict:
    return answer_document_request(event, settings.capture_notice, settings.auth_mode)
