"""POST /predictions: an image in, dog breeds with probabilities out (see README, "Calling the API")."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths

from dog_breeds.adapters.clients import aws_client
from dog_breeds.http_api import error_response, record_predicted_breed, request_metrics
from dog_breeds.image_request import read_prediction_request
from dog_breeds.predict_breeds import PredictBreeds
from dog_breeds.settings import PredictSettings

settings = PredictSettings.from_environment()
predict_breeds = PredictBreeds(settings, aws_client("sagemaker-runtime", settings.timeouts))
# Tracing patches botocore (the endpoint call) and http.client (URL input) only, not every library present.
logger, tracer, metrics = Logger(), Tracer(patch_modules=("botocore", "httplib")), Metrics()
app = APIGatewayHttpResolver()
app.use(middlewares=[request_metrics(metrics)])


@app.post("/predictions")
def create_prediction() -> dict:
    event, url_input = app.current_event, bool(settings.url_allowed_hosts)
    query, limit = event.query_string_parameters or {}, settings.max_image_bytes
    request = read_prediction_request(event.body, event.is_base64_encoded, event.headers, query, limit, url_input)
    predictions = predict_breeds(request)
    record_predicted_breed(metrics, predictions)
    return {"predictions": predictions, "request_id": event.request_context.request_id}


@app.exception_handler(Exception)
def answer_error(exc: Exception) -> Response:
    return error_response(exc, app.current_event.request_context.request_id, logger)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    return app.resolve(event, context)
