"""How fast signing is, against the floor of what any signer must do.

Run: ``python benchmarks/signing.py`` (or ``make bench``). Prints one table.

Two payloads, built here so the pair counts are exact (and printed):

* a dispatch of 12 packages — 132 flattened pairs, auth params included;
* a receipt of 500 lines — 1,609 flattened pairs.

Each time is shown as a ratio to the *floor* measured in the same run: plain ``sorted()`` of the same
flattened pairs, ``&``-join and HMAC-SHA256 — what signing would cost if Python's string order were PHP's.
Regimes:

* repeat      — the same key shapes signed again and again (the normal case: every dispatch of 12
                packages has the same keys). Target ≤ 3× the floor.
* first sight — every cache cleared before each sign. Target ≤ 10× the floor.
* cmp_to_key  — for scale: a straightforward ``functools.cmp_to_key(strnatcmp)`` sort of the flattened
                pairs, plus join and HMAC (the exact byte-level port of PHP's C code).

Times are the best of several ``timeit`` repeats (the least disturbed run), per sign.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import platform
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import signing  # noqa: E402
from signing.layout import clear_caches  # noqa: E402

SECRET = "benchmark-secret-not-a-real-one"
AUTH = {
    "api_key": "benchmark_public_key",
    "timestamp": 1700000000,
    "method": "POST",
}


def dispatch_12_packages() -> dict:
    """A dispatch of 12 packages and 12 products: 132 pairs with the auth params."""
    packages = []
    for index in range(12):
        packages.append({
            "package_id": index + 1,
            "external_package_id": str(7400000 + index),
            "weight": 10 + index,
            "volume": round(0.1 * (index + 1), 1),
            "picking_zones": ["H", "K"] if index % 3 == 0 else ["H"],
            "products": [{"line_no": 10000 * (index + 1), "artno": str(100000 + index)}],
        })
    products = [{"line_no": 10000 * (index + 1), "artno": str(100000 + index), "quantity": 1}
                for index in range(12)]
    return {"warehouse_id": "nw", "order_no": "FO777777", "transaction_id": "TX-12PKG", "order_type": "SO",
            "packages": packages, "products": products,
            **AUTH, "url": "http://dashboard.trademax.se/api/dispatch"}


def receipt_500_lines() -> dict:
    """A receipt of 500 lines (every fifth with a vendor shipment number): 1,609 pairs."""
    products = []
    for index in range(500):
        line = {"line_no": 1000 * (index + 1), "artno": f"{113 + index}-{index % 97:02d}",
                "quantity": index % 7 + 1}
        if index % 5 == 0:
            line["vendor_shipment_no"] = str(34435673456 + index)
        products.append(line)
    return {"order_no": "IO12345", "transaction_id": "8723GYSFD52F32T123", "order_type": "PO",
            "warehouse_id": "NW", "received_date": "2015-07-26", "products": products,
            **AUTH, "url": "http://dashboard.trademax.se/api/receipt"}


def floor(pairs: list[tuple[str, str]]) -> str:
    """The least any signer must do: sort the pairs, join them, HMAC the text."""
    text = "&".join(f"{key}={value}" for key, value in sorted(pairs))
    return hmac.new(SECRET.encode(), text.encode(), hashlib.sha256).hexdigest()


_CMP_KEY = functools.cmp_to_key(signing.strnatcmp)


def cmp_to_key_sign(params: dict) -> str:
    """Sign with a plain cmp_to_key sort of the flattened pairs (no sort keys, no caches)."""
    pairs = sorted(signing.flatten(params), key=lambda pair: _CMP_KEY(pair[0]))
    text = "&".join(f"{key}={value}" for key, value in pairs)
    return hmac.new(SECRET.encode(), text.encode(), hashlib.sha256).hexdigest()


def first_sight_sign(params: dict) -> str:
    clear_caches()
    return signing.sign(params, SECRET)


def best_per_call(function, argument, *, number: int, repeat: int) -> float:
    """Best-of-``repeat`` seconds per call, each repeat timing ``number`` calls."""
    timer = timeit.Timer(lambda: function(argument))
    return min(timer.repeat(repeat=repeat, number=number)) / number


def main() -> int:
    print(f"signing benchmark — Python {platform.python_version()}, {platform.machine()}, "
          f"nproc={os.cpu_count()}")
    rows = []
    for name, params, number, count in (("dispatch, 12 packages", dispatch_12_packages(), 200, 132),
                                        ("receipt, 500 lines", receipt_500_lines(), 20, 1609)):
        pairs = signing.flatten(params)
        assert len(pairs) == count, f"{name}: {len(pairs)} pairs, meant to be {count}"
        # The same answer from every method, or the timing means nothing.
        clear_caches()
        expected = signing.sign(params, SECRET)
        assert cmp_to_key_sign(params) == expected, "cmp_to_key sign disagrees"
        base = best_per_call(floor, pairs, number=number, repeat=15)
        signing.sign(params, SECRET)  # warm the caches for the repeat regime
        repeat_time = best_per_call(lambda p: signing.sign(p, SECRET), params, number=number, repeat=15)
        first_time = best_per_call(first_sight_sign, params, number=max(1, number // 4), repeat=15)
        slow_time = best_per_call(cmp_to_key_sign, params, number=max(1, number // 20), repeat=5)
        rows.append((name, len(pairs), base, repeat_time, first_time, slow_time))

    header = (f"{'payload':<22} {'pairs':>5} {'floor µs':>9} {'repeat µs':>10} {'×floor':>7} "
              f"{'first µs':>9} {'×floor':>7} {'cmp_to_key µs':>14} {'×floor':>7}")
    print(header)
    print("-" * len(header))
    for name, count, base, repeat_time, first_time, slow_time in rows:
        print(f"{name:<22} {count:>5} {base * 1e6:>9.1f} "
              f"{repeat_time * 1e6:>10.1f} {repeat_time / base:>7.2f} "
              f"{first_time * 1e6:>9.1f} {first_time / base:>7.2f} {slow_time * 1e6:>14.1f} "
              f"{slow_time / base:>7.1f}")
    print("targets: repeat ≤ 3× floor, first sight ≤ 10× floor")
    missed = [(name, regime, ratio, limit)
              for name, _, base, repeat_time, first_time, _ in rows
              for regime, ratio, limit in (("repeat", repeat_time / base, 3.0),
                                           ("first sight", first_time / base, 10.0))
              if ratio > limit]
    for name, regime, ratio, limit in missed:
        print(f"MISSED: {name}, {regime}: {ratio:.2f}× floor (target {limit:g}×)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
