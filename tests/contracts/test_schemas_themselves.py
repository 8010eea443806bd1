"""The contract schemas are themselves valid JSON Schema 2020-12, each names the document section it is
written from (a ``description`` quoting it), and each rejects what its document rules out — so a schema
that accepted anything could not pass for a contract."""
from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from tests.contracts.schemas import problems, schemas

AUTH = {"api_key": "k", "timestamp": 1_700_000_000, "signature": "0" * 64, "method": "POST",
        "url": "http://dashboard.trademax.se/api/dispatch"}
DISPATCH = {**AUTH, "warehouse_id": "nw", "order_no": "FO1", "order_type": "SO", "transaction_id": "T1",
            "packages": [{"package_id": 1, "weight": 34, "volume": 2,
                          "products": [{"line_no": 1, "artno": "A"}]}],
            "products": [{"line_no": 1, "artno": "A", "quantity": 1}]}
S2S_PRODUCT = {"source": {"source_id": "123", "product_active": "true", "source_product_code": "ABC",
                          "sync_token": "0", "fetch_token": "0"},
               "product": {"title": "Example", "variants": {"source_variant_code": "ABC", "sku": "ABC"}}}


@pytest.mark.parametrize("schema_id", sorted(schemas()))
def test_each_schema_is_valid_and_quotes_its_document(schema_id):
    schema = schemas()[schema_id]
    Draft202012Validator.check_schema(schema)
    assert '"' in schema["description"] and len(schema["description"]) > 100


@pytest.mark.parametrize("name, instance", [
    ("trademax-dispatch#create", DISPATCH),
    ("trademax-dispatch#update", {**AUTH, "method": "PATCH", "transaction_id": "T1", "draft": True}),
    ("kaching-stock-import#body", {"loc": {"product1": 7, "product3": {"variant1": 7, "variant2": 7}}}),
    ("kaching-stock-import#variant_body", {"loc": {"product1": 7, "product3": {"variant1": 7}}}),
    ("stock2shop#queue", {"system_products": [S2S_PRODUCT]}),
])
def test_the_documents_own_examples_conform(name, instance):
    assert problems(name, instance) == []


@pytest.mark.parametrize("name, instance, why", [
    ("trademax-dispatch#create", {k: v for k, v in DISPATCH.items() if k != "order_no"}, "order_no"),
    ("trademax-dispatch#create", {**DISPATCH, "order_type": "XX"}, "XX"),
    ("trademax-dispatch#create", {**DISPATCH, "typo": 1}, "typo"),
    ("trademax-dispatch#create", {k: v for k, v in DISPATCH.items() if k != "signature"}, "signature"),
    ("trademax-dispatch#update", {**AUTH, "method": "PATCH", "transaction_id": "T1"}, "draft"),
    ("trademax-dispatch#publish", {**AUTH, "method": "PATCH", "transaction_id": "T1", "draft": True},
     "False"),
    ("trademax-other#stock_adjustment", {**AUTH, "method": "PATCH", "warehouse_id": "nw", "quantity": 7,
                                         "type": "relative"}, "reason"),
    ("kaching-stock-import#body", {"loc": {"p": "7"}}, "7"),
    ("kaching-stock-import#body", {"loc": {"p": {}}}, "loc/p"),
    ("kaching-stock-import#variant_body", {"loc": {"product1": 7}}, "should not be valid"),
    ("stock2shop#stock_levels", {"system_products": [S2S_PRODUCT]}, "qty"),
    ("stock2shop#queue", {"system_products": [{**S2S_PRODUCT, "product": {"variants": {
        "source_variant_code": "ABC", "sku": "ABC"}}}]}, "title"),
])
def test_each_schema_refuses_what_its_document_rules_out(name, instance, why):
    found = problems(name, instance)
    assert found and why in " ".join(found), found
