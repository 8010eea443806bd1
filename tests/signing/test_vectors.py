"""Every reference case computed by PHP passes, asserted stage by stage so a failure names the first bad step.

Stages of a signing case: (1) flatten — the flattened keys and PHP string values, in any order; (2) order —
the pairs in signed order; (3) the canonical string; (4) the signature; (5) the same signature when the
request is read back from the exact JSON body PHP decoded, and ``verify`` accepts it.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import cmp_to_key

import pytest

import signing
from signing.natural_order import sort_key

from .vectors import require_case, vector_params

AUTH_FIELDS = ("api_key", "timestamp", "method", "url")


@pytest.mark.parametrize("case", vector_params("natsort.json"))
def test_natsort_case(case):
    case = require_case(case)
    assert signing.natural_sorted(case["keys"]) == case["expected"], "natural_sorted (fast sort keys) differs"
    by_port = sorted(case["keys"], key=cmp_to_key(signing.strnatcmp))
    assert by_port == case["expected"], "sorting with the exact strnatcmp port differs"
    assert sorted(case["keys"], key=sort_key) == case["expected"], "sort_key differs"


@pytest.mark.parametrize("case", vector_params("signing.json"))
def test_signing_case(case):
    case = require_case(case)
    params = {**case["params"], **{field: case[field] for field in AUTH_FIELDS}}
    expected_pairs = [tuple(pair) for pair in case["pairs"]]

    flattened = signing.flatten(params)
    assert Counter(flattened) == Counter(expected_pairs), "stage 1 (flatten: keys and PHP values) differs"

    assert signing.signed_pairs(params) == expected_pairs, "stage 2 (signed order of the pairs) differs"
    assert signing.natural_sorted(key for key, _ in flattened) == [key for key, _ in expected_pairs], (
        "stage 2 (natural_sorted of the flattened keys) differs")

    assert signing.canonical_string(params) == case["canonical"], "stage 3 (canonical string) differs"

    assert signing.sign(params, case["secret"]) == case["signature"], "stage 4 (signature) differs"

    received = json.loads(case["json_body"])
    assert signing.sign(received, case["secret"]) == case["signature"], (
        "stage 5 (signature of the request read back from its JSON body) differs")
    assert signing.verify({**received, "signature": case["signature"]}, case["secret"]), (
        "stage 5 (verify of the received request) fails")


def test_missing_vectors_fail_loudly_with_the_path_looked_at():
    (param,) = vector_params("no-such-vectors.json")
    with pytest.raises(pytest.fail.Exception, match=r"reference[/\\]no-such-vectors\.json"):
        require_case(param.values[0])
