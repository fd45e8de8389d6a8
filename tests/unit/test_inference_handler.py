"""The endpoint handler (training_jobs/inference.py) called as the toolkit calls it: status and JSON, every path.

A small untrained artifact is enough: these check the request and response code around the network,
not what the network has learned (the integration tests serve a trained one through the toolkit).
"""

from __future__ import annotations

import base64
import io
import json

import inference
import pytest
from PIL import Image

from breed_classifier.artifact import save_artifact
from breed_classifier.model import ModelConfig, build_model

FOLDERS = ["001.Affenpinscher", "002.Afghan_hound", "003.Airedale_terrier", "004.Akita"]


class Context:
    """What the toolkit's request context gives transform_fn: headers in, status out."""

    def __init__(self, custom_attributes: str | None = None) -> None:
        headers = {"X-Amzn-SageMaker-Custom-Attributes": custom_attributes} if custom_attributes else {}
        self.request_processor = [type("Processor", (), {"get_request_properties": lambda _: headers})()]
        self.status: tuple[int, str] | None = None
        self.content_type: str | None = None

    def set_response_status(self, code: int, phrase: str) -> None:
        self.status = (code, phrase)

    def set_response_content_type(self, index: int, value: str) -> None:
        self.content_type = value


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    config = ModelConfig.for_architecture("small_cnn", len(FOLDERS), 32)
    model_dir = tmp_path_factory.mktemp("artifact")
    save_artifact(model_dir, build_model(config), config, FOLDERS)
    return inference.model_fn(str(model_dir))


def _jpeg(size=(48, 40), mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, 90).save(buffer, "JPEG")
    return buffer.getvalue()


def call(model, body, content_type="image/jpeg", attributes=None):
    context = Context(attributes)
    text, content = inference.transform_fn(model, body, content_type, "application/json", context)
    return context.status, json.loads(text), content


def test_an_image_gets_breed_names_best_first(model):
    status, answer, content_type = call(model, _jpeg())
    assert status is None and content_type == "application/json"  # no status set: the toolkit answers 200
    predictions = answer["predictions"]
    assert len(predictions) == 4  # top_k defaults to 5; the model has 4 classes
    assert {p["breed"] for p in predictions} == {"Affenpinscher", "Afghan hound", "Airedale terrier", "Akita"}
    probabilities = [p["probability"] for p in predictions]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) == pytest.approx(1, abs=1e-4)
    assert all(FOLDERS[p["class_index"]].endswith(p["breed"].replace(" ", "_")) for p in predictions)


@pytest.mark.parametrize(
    ("attributes", "count"),
    [("top_k=2", 2), ("trace=1, top_k=1", 1), ("other=3", 4), ("top_k=20", 4), ("top_k=10", 4), (None, 4)],
)
def test_top_k_comes_from_the_custom_attributes(model, attributes, count):
    assert len(call(model, _jpeg(), attributes=attributes)[1]["predictions"]) == count


def test_json_bodies_carry_the_image_and_top_k(model):
    body = json.dumps({"image": base64.b64encode(_jpeg()).decode(), "top_k": 3})
    status, answer, _ = call(model, body, "application/json", attributes="top_k=1")
    assert status is None and len(answer["predictions"]) == 3  # the body's top_k wins
    body = json.dumps({"image": base64.b64encode(_jpeg()).decode()})
    assert len(call(model, body, "application/json; charset=utf-8", attributes="top_k=2")[1]["predictions"]) == 2


@pytest.mark.parametrize(
    ("body", "content_type", "attributes", "status", "code", "words"),
    [
        (b"", "image/jpeg", None, 422, "UndecodableImage", "empty"),
        (b"\xff\xd8\xff" + b"\x00" * 40, "image/jpeg", None, 422, "UndecodableImage", "not a decodable"),
        ("gif", "image/png", None, 422, "UndecodableImage", "GIF image"),
        ("bomb", "image/png", None, 413, "PayloadTooLarge", "at most 40000000 pixels"),
        (b"x" * (20 * 1024 * 1024 + 1), "image/jpeg", None, 413, "PayloadTooLarge", "larger than"),
        (b"abc", "text/csv", None, 415, "UnsupportedMediaType", "'text/csv' is not accepted"),
        (b"abc", "", None, 415, "UnsupportedMediaType", "'none' is not accepted"),
        ('{"image": 5}', "application/json", None, 400, "MalformedRequest", '"image"'),
        ("[1]", "application/json", None, 400, "MalformedRequest", '"image"'),
        ('{"image": "!!"}', "application/json", None, 400, "MalformedRequest", "base64"),
        ("{", "application/json", None, 400, "MalformedRequest", "not JSON"),
        ("[" * 100_000, "application/json", None, 400, "MalformedRequest", "not JSON"),
        ("jpeg", "image/jpeg", "top_k=0", 400, "MalformedRequest", "from 1 to 20"),
        ("jpeg", "image/jpeg", "top_k=21", 400, "MalformedRequest", "from 1 to 20"),
        ("jpeg", "image/jpeg", "top_k=+5", 400, "MalformedRequest", "from 1 to 20"),
        ("jpeg", "image/jpeg", "top_k=٣", 400, "MalformedRequest", "from 1 to 20"),
        ("jpeg", "image/jpeg", "top_k=" + "1" * 5000, 400, "MalformedRequest", "from 1 to 20"),
        ("jpeg", "image/jpeg", "top_k=005", 400, "MalformedRequest", "from 1 to 20"),
        ('{"image": "", "top_k": true}', "application/json", None, 400, "MalformedRequest", "from 1 to 20"),
        ('{"image": "", "top_k": 2.0}', "application/json", None, 400, "MalformedRequest", "from 1 to 20"),
        (b"x" * (20 * 1024 * 1024), "image/jpeg", None, 422, "UndecodableImage", "not a decodable"),
    ],
)
def test_every_refusal_is_a_status_and_a_json_error(model, body, content_type, attributes, status, code, words):
    makers = {
        "gif": lambda: _encoded(Image.new("RGB", (8, 8)), "GIF"),
        "bomb": lambda: _encoded(Image.new("1", (8000, 6000)), "PNG"),
        "jpeg": _jpeg,
    }
    if isinstance(body, str) and body in makers:
        body = makers[body]()
    context = Context(attributes)
    text, content_type_out = inference.transform_fn(model, body, content_type, "application/json", context)
    error = json.loads(text)["error"]
    assert context.status == (status, inference._REASONS[status])
    assert (error["code"], content_type_out) == (code, "application/json")
    assert words in error["message"]


def test_without_a_request_context_the_defaults_apply(model):
    text, _ = inference.transform_fn(model, _jpeg(), "image/jpeg", "application/json")
    assert len(json.loads(text)["predictions"]) == 4
    body = json.dumps({"image": base64.b64encode(_jpeg()).decode(), "top_k": 2})
    assert len(json.loads(inference.transform_fn(model, body, "application/json", "*/*")[0])["predictions"]) == 2


def test_a_source_of_exactly_40_megapixels_is_accepted(model):
    status, answer, _ = call(model, _encoded(Image.new("1", (8000, 5000)), "PNG"), "image/png")
    assert status is None and len(answer["predictions"]) == 4


def test_a_failure_of_the_model_is_a_500_with_a_fixed_message(model, monkeypatch):
    monkeypatch.setattr(inference, "predict", lambda *_: (_ for _ in ()).throw(RuntimeError("CUDA out of memory")))
    status, answer, _ = call(model, _jpeg())
    assert status == (500, "Internal Server Error")
    assert answer == {"error": {"code": "ModelError", "message": "the model failed to answer this request"}}


def test_the_toolkits_own_failures_are_answered_as_json_without_the_trace():
    from sagemaker_inference.errors import GenericInferenceToolkitError
    from sagemaker_inference.transformer import Transformer

    context = Context()
    try:
        b"\xff".decode("utf-8")  # what the toolkit does to an application/json body before transform_fn
    except UnicodeDecodeError:
        answer = Transformer.handle_error(context, GenericInferenceToolkitError(500, "boom"), "Traceback ...")
    assert context.status == (400, "Bad Request") and context.content_type == "application/json"
    assert json.loads(answer[0]) == {
        "error": {"code": "MalformedRequest", "message": "the JSON body is not UTF-8 text"}
    }
    answer = Transformer.handle_error(context, GenericInferenceToolkitError(500, "boom"), "Traceback ...")
    assert context.status == (500, "Internal Server Error") and "Traceback" not in answer[0]
    assert json.loads(answer[0])["error"] == {
        "code": "ModelError",
        "message": "the model failed to answer this request",
    }
    for status, code in ((415, "UnsupportedMediaType"), (499, "ModelError")):
        answer = Transformer.handle_error(context, GenericInferenceToolkitError(status, "boom"), "Traceback ...")
        expected = (415, "Unsupported Media Type") if status == 415 else (500, "Internal Server Error")
        assert context.status == expected
        message = "the request could not be read" if status == 415 else "the model failed to answer this request"
        assert json.loads(answer[0])["error"] == {"code": code, "message": message}


def _encoded(image: Image.Image, image_format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format)
    return buffer.getvalue()
