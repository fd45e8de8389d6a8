"""Answers of POST /predictions checked against the OpenAPI document the API itself serves."""

from __future__ import annotations

import copy

from openapi_schema_validator import OAS31Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012


def assert_matches_contract(document: dict, status: int, body: dict) -> None:
    """The answer validates against the document, strictly: clients are told to ignore fields they do not know
    (additive changes), but the project's own answers carry only the fields the document declares."""
    registry = Registry().with_resource(
        "urn:api", Resource.from_contents(strict(document), default_specification=DRAFT202012)
    )
    pointer = f"urn:api#/paths/~1predictions/post/responses/{status}/content/application~1json/schema"
    OAS31Validator({"$ref": pointer}, registry=registry).validate(body)


def strict(document: dict) -> dict:
    """The document with every object schema that lists its properties closed to others."""
    closed = copy.deepcopy(document)

    def close(schema):
        if isinstance(schema, dict):
            if schema.get("type") == "object" and "properties" in schema:
                schema.setdefault("additionalProperties", False)
            for value in schema.values():
                close(value)
        elif isinstance(schema, list):
            for value in schema:
                close(value)

    close(closed["components"]["schemas"])
    return closed
