"""``python -m signing explain FILE|-``: one request's signing steps for support staff; never the secret."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from signing.__main__ import main

from .vectors import REPOSITORY_ROOT, require_case, vector_params

EXAMPLE = REPOSITORY_ROOT / "examples" / "dispatch-explain.json"
SECRET = "EXPLAIN-TEST-SECRET"
DOCUMENT = {"method": "POST", "url": "http://x.test/api/receipt", "api_key": "pub", "timestamp": 1700000000,
            "params": {"warehouse_id": "nw", "products": [{"artno": "998", "quantity": 2}]}}


def run(argv, environ, stdin_text=""):
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, environ, stdin=io.StringIO(stdin_text), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_explain_prints_pairs_in_signed_order_the_canonical_string_and_the_signature():
    from signing import canonical_string, sign

    params = {**DOCUMENT["params"], **{k: DOCUMENT[k] for k in ("api_key", "timestamp", "method", "url")}}
    code, out, err = run(["explain", "-"], {"TRADEMAX_SECRET": SECRET}, json.dumps(DOCUMENT))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "Flattened pairs, in signed order (7):"
    assert lines[1:8] == ["  1  api_key=pub", "  2  method=POST", "  3  products[0][artno]=998",
                          "  4  products[0][quantity]=2", "  5  timestamp=1700000000",
                          "  6  url=http://x.test/api/receipt", "  7  warehouse_id=nw"]
    assert f"  {canonical_string(params)}" in lines
    assert lines[-1] == f"  {sign(params, SECRET)}"
    assert SECRET not in out


@pytest.mark.parametrize("environ", [{}, {"TRADEMAX_SECRET": ""}])
def test_a_missing_secret_names_the_variable_and_exits_2(environ):
    code, out, err = run(["explain", "-"], environ, json.dumps(DOCUMENT))
    assert code == 2 and out == ""
    assert "TRADEMAX_SECRET" in err


@pytest.mark.parametrize(("text", "complaint"), [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must hold a JSON object"),
    (json.dumps({"method": "GET"}), "lacks url, api_key, timestamp, params"),
    (json.dumps({**DOCUMENT, "params": [1]}), '"params" must be a JSON object'),
    (json.dumps({**DOCUMENT, "params": {"api_key": "x"}}), "must not hold the auth params (api_key)"),
])
def test_bad_documents_get_a_clear_message_and_exit_2(text, complaint):
    code, out, err = run(["explain", "-"], {"TRADEMAX_SECRET": SECRET}, text)
    assert code == 2 and out == ""
    assert complaint in err and SECRET not in err


def test_an_unreadable_file_and_an_unsignable_request_exit_2_without_the_secret(tmp_path):
    code, _, err = run(["explain", str(tmp_path / "absent.json")], {"TRADEMAX_SECRET": SECRET})
    assert code == 2 and "cannot read" in err
    too_deep: object = "x"
    for _ in range(40):
        too_deep = [too_deep]
    deep = {**DOCUMENT, "params": {"a": too_deep}}
    code, _, err = run(["explain", "-"], {"TRADEMAX_SECRET": SECRET}, json.dumps(deep))
    assert code == 2 and "cannot be signed" in err and "a[0][0]" in err and SECRET not in err


def test_the_example_document_reproduces_its_php_reference_signature():
    (case,) = [require_case(param.values[0]) for param in vector_params("signing.json")
               if param.id == "dispatch_create_doc"]
    document = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    assert document["params"] == case["params"] and document["timestamp"] == case["timestamp"]
    code, out, _ = run(["explain", str(EXAMPLE)], {"TRADEMAX_SECRET": case["secret"]})
    assert code == 0
    assert out.splitlines()[-1] == f"  {case['signature']}"


def test_python_dash_m_signing_reads_the_secret_from_the_environment_and_never_prints_it():
    environ = {key: value for key, value in os.environ.items() if key != "TRADEMAX_SECRET"}
    result = subprocess.run([sys.executable, "-m", "signing", "explain", str(EXAMPLE)], cwd=REPOSITORY_ROOT,
                            env={**environ, "TRADEMAX_SECRET": SECRET}, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Canonical string" in result.stdout and SECRET not in result.stdout + result.stderr
    missing = subprocess.run([sys.executable, "-m", "signing", "explain", "-"], cwd=REPOSITORY_ROOT,
                             env=environ, input=json.dumps(DOCUMENT), capture_output=True, text=True,
                             timeout=60)
    assert missing.returncode == 2 and "TRADEMAX_SECRET" in missing.stderr
