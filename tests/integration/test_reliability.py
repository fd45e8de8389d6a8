"""`make reliability` with a small budget: fuzz, nasty images, faults and load, every row must pass.

The full budget (2,000 fuzzed requests, the large images, every fault, 2,000 requests of load) runs in
`make reliability`; this is the same code with fewer examples, so a regression fails `make test`.
"""

from __future__ import annotations

import pytest

from reliability.__main__ import SMALL, run


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return run(SMALL, tmp_path_factory.mktemp("reliability"))


def test_every_row_of_the_small_reliability_run_passes(report):
    failed = [row for row in report.rows if not row.passed]
    assert not failed, "\n" + report.table()


def test_the_run_covered_each_part(report):
    parts = {row.part for row in report.rows}
    assert parts == {"corpus", "fuzz", "schema", "load", "blue/green", "faults"}
    fuzzed = next(row for row in report.rows if row.part == "fuzz" and "generated requests" in row.measure)
    assert fuzzed.measure.startswith(f"{SMALL.fuzz_examples} generated")
    load = report.details["load"]
    statuses = load["statuses"]
    # every answer a 200 or a 429 but Lambda's throttles (API Gateway's 500), which its own row bounds
    assert statuses.get(200, 0) > 0 and set(statuses) <= {200, 429, 500}
    assert statuses.get(500, 0) == load["lambda_throttles"]


def test_refused_images_are_refused_as_the_contract_says(report):
    outcomes = {outcome["name"]: (outcome["status"], outcome["code"]) for outcome in report.details["corpus"]}
    assert outcomes["bomb-header-100k-x-100k"] == (413, "PayloadTooLarge")
    assert outcomes["truncated-jpeg"] == (422, "UndecodableImage")
    assert outcomes["gif-sent-as-jpeg"] == (422, "UndecodableImage")
    assert outcomes["tall-thin-1x100000"][0] == 200 and outcomes["cmyk-jpeg"][0] == 200


def test_the_schema_fuzzer_can_fail(tmp_path):
    # Given an API whose answers break its own contract (here: a body the document does not describe)
    from offline_stack.offline_api import offline_api
    from reliability.schema_fuzz import fuzz_schema

    class Undocumented:
        def invoke(self, body, content_type, accept, custom_attributes):
            return b'{"predictions": [{"label": "not what the contract says"}]}', "application/json"

    with offline_api(Undocumented()) as (front, _):
        result = fuzz_schema(front.url, max_examples=5)
    # Then schemathesis reports it
    assert not result.passed and result.failures, result.output[-2000:]
