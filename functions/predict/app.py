"""POST /predictions: an image in, dog breeds with probabilities out (see docs/api.md, "The prediction API").

GET / and GET /openapi.json are the page function's (functions/page), so page loads never take this function's
reserved concurrency.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths

from dog_breeds.adapters.clients import aws_client
from dog_breeds.adapters.sagemaker_endpoint import SageMakerEndpoint
from dog_breeds.http_api import HttpApiRequest, answer_api_request, record_predicted_breed
from dog_breeds.image_request import read_prediction_request
from dog_breeds.predict_breeds import PredictBreeds
from dog_breeds.settings import PredictSettings

settings = PredictSettings.from_environment()
predict_breeds = PredictBreeds(settings, SageMakerEndpoint(aws_client("sagemaker-runtime", settings.timeouts)))
# Tracing patches botocore (the endpoint call) and http.client (URL input) only, not every library present.
logger, tracer, metrics = Logger(), Tracer(patch_modules=("botocore", "httplib")), Metrics()


def create_prediction(request: HttpApiRequest) -> dict:
    limit, url_input = settings.image_limit_bytes, bool(settings.url_allowed_hosts)
    image = read_prediction_request(
        request.body, request.is_base64_encoded, request.headers, request.query, limit, url_input
    )
    predictions = predict_breeds(image)
    record_predicted_breed(predictions)
    return {"predictions": predictions, "request_id": request.request_id}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    return answer_api_request(event, logger, metrics, create_prediction)
