"""make mutation's score: a mutant no unit test runs counts as not killed, unless its line runs only at import."""

from __future__ import annotations

from tests.mutation import PROJECT_ROOT, score

MODULE = "offline_stack/supervision.py"


def _result(line: int, status: str, selected: int) -> dict:
    return {
        "file_path": str(PROJECT_ROOT / MODULE),
        "line_number": line,
        "description": "== to !=",
        "status": status,
        "selected_tests": ["t"] * selected,
    }


def test_unrun_lines_in_functions_count_against_the_score_and_import_lines_are_listed_apart():
    source = (PROJECT_ROOT / MODULE).read_text().splitlines()
    in_function = next(n for n, text in enumerate(source, 1) if text.startswith("    return"))
    at_import = next(n for n, text in enumerate(source, 1) if text.startswith("def "))
    report = {
        "results": [
            _result(in_function, "zapped", 3),
            _result(in_function, "survived", 3),
            _result(in_function, "error", 900),  # no unit test runs it: not killed
            _result(at_import, "error", 900),  # runs at import only: listed, not scored
        ]
    }
    scored = score(report, [MODULE])[MODULE]
    assert (scored["mutants"], scored["killed"], scored["score"]) == (3, 1, 33.3)
    assert len(scored["survivors"]) == 2 and len(scored["at_import"]) == 1
