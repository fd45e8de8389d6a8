"""Answers of POST /predictions checked against the OpenAPI document the API itself serves."""

from __future__ import annotations

from openapi_schema_validator import OAS31Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012


def assert_matches_contract(document: dict, status: int, body: dict) -> None:
    registry = Registry().with_resource("urn:api", Resource.from_contents(document, default_specification=DRAFT202012))
    pointer = f"urn:api#/paths/~1predictions/post/responses/{status}/content/application~1json/schema"
    OAS31Validator({"$ref": pointer}, registry=registry).validate(body)
