"""``wms-relay catalog import|show|export`` against a real valkey-server: an import says what it added,
changed, removed (``--replace``) and released, and is audited; ``show`` prints one artno's row (exit 1 and
what is sent instead when it has none) or all of them; ``export`` prints a file ``import`` reads back
unchanged.  Refused with exit code 2 and a sentence, nothing changed: a destination that is not on (its base
URL unset), one without a catalog, a file that cannot be read, and a bad file — named by line and column,
nothing of it imported, the refusal audited."""
from __future__ import annotations

import pytest

from worker.store.audit_log import AuditLog
from worker.store.catalog import Catalog

HEADER = "artno,product_code,variant_code,title,active\n"
SHIRTS = (HEADER + '4711-S,P-100,P-100-S,"Shirt, blue",true\n4711-M,P-100,P-100-M,"Shirt, blue",\n'
          "123,CHAIR,,Chair,false\n")


@pytest.fixture
def on(env, monkeypatch):
    monkeypatch.setenv("KACHING_BASE_URL", "http://kaching.invalid/")
    monkeypatch.setenv("STOCK2SHOP_BASE_URL", "http://s2s.invalid/")
    return env


def write(tmp_path, text: str, name: str = "catalog.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(path)


def test_import_show_export_and_replace(cli, on, store, tmp_path):
    code, out, err = cli("catalog", "import", "stock2shop", write(tmp_path, SHIRTS), "--actor", "ann")
    assert code == 0, err
    assert "3 row(s) read from" in out and "added 3, changed 0; released 0 waiting delivery(ies)" in out

    shown = cli.json("catalog", "show", "stock2shop", "4711-M")
    assert shown["row"] == {"artno": "4711-M", "product_code": "P-100", "variant_code": "P-100-M",
                            "title": "Shirt, blue", "active": "true"} and shown["mode"] == "required"
    code, out, _ = cli("catalog", "show", "stock2shop", "999")
    assert code == 1 and "no row in Stock2Shop's catalog (STOCK2SHOP_CATALOG=required)" in out
    assert "wait (unmapped)" in out
    code, out, _ = cli("catalog", "show", "kaching", "999")
    assert code == 1 and "sent as its own product" in out
    code, out, _ = cli("catalog", "show", "stock2shop")
    assert code == 0 and "3 row(s)" in out and "4711-M -> product P-100 variant P-100-M 'Shirt, blue'" in out
    assert "123 -> product CHAIR 'Chair' (inactive)" in out

    code, exported, _ = cli("catalog", "export", "stock2shop")
    assert code == 0 and exported.splitlines()[0] == HEADER.strip()
    assert sorted(exported.splitlines()[1:]) == sorted(  # active written out: empty means true
        line if not line.endswith(",") else line + "true" for line in SHIRTS.splitlines()[1:])
    code, out, _ = cli("catalog", "import", "stock2shop", write(tmp_path, exported, "again.csv"))
    assert code == 0 and "added 0, changed 0;" in out  # the export reads back unchanged

    code, out, _ = cli("catalog", "import", "stock2shop", "--replace",
                       write(tmp_path, HEADER + "4711-S,P-100,P-100-S,Shirt,\n", "replace.csv"))
    assert code == 0 and "added 0, changed 1, removed 2;" in out
    assert [row.artno for row in Catalog(store, "wms:stock2shop").all_rows()] == ["4711-S"]
    entries, _ = AuditLog(store).page()
    assert [(e.action, e.target, e.status) for e in entries] == [("catalog-import", "stock2shop", "done")] * 3
    assert entries[-1].actor == "ann" and entries[-1].reason.endswith("catalog.csv")


def test_a_bad_file_is_refused_whole_naming_line_and_column(cli, on, store, tmp_path):
    assert cli("catalog", "import", "kaching", write(tmp_path, HEADER + "A,P,,T,\n"))[0] == 0
    bad = write(tmp_path, HEADER + "B,Q,,T,\nC,,,T,\n", "bad.csv")
    code, out, _ = cli("catalog", "import", "kaching", bad)
    assert code == 2 and "refused, nothing imported: line 3, column product_code: empty" in out
    assert [row.artno for row in Catalog(store, "wms:kaching").all_rows()] == ["A"]  # not even B
    result = cli("catalog", "import", "kaching", bad, "--json")
    assert result[0] == 2
    entries, _ = AuditLog(store).page()
    assert [e.status for e in entries] == ["failed", "failed", "done"]  # newest first
    no_title = write(tmp_path, HEADER + "B,Q,,,\n", "untitled.csv")
    code, out, _ = cli("catalog", "import", "stock2shop", no_title)
    assert code == 2 and "line 2, column title: empty" in out


@pytest.mark.parametrize("argv, says", [
    (("catalog", "import", "stocktrim", "{file}"),
     "StockTrim is not on here (STOCKTRIM_BASE_URL is not set)"),
    (("catalog", "import", "trademax", "{file}"), "Trademax has no catalog"),
    (("catalog", "import", "nowhere", "{file}"), "No destination 'nowhere'"),
    (("catalog", "show", "stocktrim"), "StockTrim is not on here"),
    (("catalog", "export", "stocktrim"), "StockTrim is not on here"),
    (("catalog", "import", "kaching", "{missing}"), "cannot read"),
])
def test_refused_with_a_sentence_and_nothing_changed(cli, on, store, tmp_path, argv, says):
    good = write(tmp_path, HEADER + "A,P,,T,\n")
    code, out, err = cli(*(a.format(file=good, missing=str(tmp_path / "missing.csv")) for a in argv))
    assert code == 2 and says in err, (out, err)
    assert not list(store.scan_iter("wms:*:catalog:*")) and AuditLog(store).count() == 0


def test_status_and_event_name_unmapped_counts_until_an_import_releases_them(cli, on, tmp_path):
    """A count parked for its catalog row is an attention item of ``status`` (the count and the first
    artnos; ``--fail-on-attention`` exits 1), ``event`` says what to do, and the import that gives it a row
    releases it (due now) and clears both."""
    from tasks.events import Delivery, validate_event
    from worker.delivery.catalog_wait import wait_for_row
    from worker.delivery.relay import build_relay
    from worker.destinations.table import ROWS
    from worker.settings import Settings

    relay = build_relay(Settings.from_env(), redis_client=on.client(), sends=False)
    for n, artno in enumerate(("4711-M", "4711-L")):
        event = validate_event("stock.adjust", {"event_id": f"E-{n}", "occurred_at": "2024-05-14T06:00:00Z",
                                                "artno": artno, "warehouse_id": "nw", "quantity": 3,
                                                "type": "absolute"})
        relay.ledger_of("stock2shop").accept(event)
        wait_for_row(relay, Delivery(ROWS["stock2shop", "stock.adjust"], event))
    report = cli.json("status")
    assert report["unmapped"] == {"stock2shop": {"title": "Stock2Shop", "deliveries": 2,
                                                 "first_artnos": ["4711-M", "4711-L"]}}
    (item,) = [i for i in report["attention"] if i["flag"] == "unmapped"]
    assert "2 count(s) for Stock2Shop wait for their artno's catalog row" in item["message"]
    assert "wms-relay catalog import stock2shop FILE" in item["message"]
    assert cli("status", "--fail-on-attention")[0] == 1
    code, out, _ = cli("event", "stock.adjust", "E-0")
    assert "import a row for artno 4711-M into Stock2Shop's catalog" in out

    shirt = write(tmp_path, HEADER + "4711-M,P-100,P-100-M,Shirt,\n")
    code, out, _ = cli("catalog", "import", "stock2shop", shirt)
    assert code == 0 and "released 1 waiting delivery(ies)" in out
    assert relay.schedule.get("stock2shop/stock.adjust:E-0").due_at <= relay.clock()
    assert relay.schedule.get("stock2shop/stock.adjust:E-1").due_at > relay.clock() + 60  # still no row
    assert cli.json("status")["unmapped"]["stock2shop"]["first_artnos"] == ["4711-L"]


def test_a_stocktrim_import_queues_its_products_and_show_counts_them(cli, env, monkeypatch, tmp_path):
    monkeypatch.setenv("STOCKTRIM_BASE_URL", "http://stocktrim.invalid/")
    monkeypatch.setenv("STOCKTRIM_AUTH_ID", "tenant-1")
    monkeypatch.setenv("STOCKTRIM_AUTH_SIGNATURE", "sig-1")
    code, out, err = cli("catalog", "import", "stocktrim", write(tmp_path, SHIRTS), "--actor", "ann")
    assert code == 0 and "3 product(s) queued for StockTrim" in out, err
    shown = cli.json("catalog", "show", "stocktrim")
    assert shown["products"] == {"pending": 3, "refused": 0, "refusals": {}}
    code, out, _ = cli("catalog", "show", "stocktrim")
    assert "products for StockTrim: 3 waiting to be sent, 0 refused" in out
    code, out, _ = cli("catalog", "import", "stocktrim", write(tmp_path, SHIRTS, "again.csv"))
    assert code == 0 and "queued" not in out  # nothing new or changed: no product to send
