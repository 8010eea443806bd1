"""Differential tests against real PHP (Debian php-cli): our strnatcmp and sign against PHP's own.

PHP runs once per test, on a batch (``php_batch_oracle.php`` beside this file: ``uksort($flat,
'strnatcmp')`` and ``hash_hmac``, the rules the reference cases in ``reference/`` were computed with).
Inputs come from
a seeded ``random.Random``, so a failure reproduces. Where ``php`` is missing the tests skip loudly, except
in CI (``CI`` set), where they fail: CI must compare against PHP (``make php`` installs it).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from functools import cmp_to_key
from pathlib import Path

import pytest

from signing import MAX_DEPTH, canonical_string, natural_sorted, sign, signed_pairs, strnatcmp

pytestmark = pytest.mark.php

ORACLE = Path(__file__).with_name("php_batch_oracle.php")
KEY_COUNT = 5_000
PAYLOAD_COUNT = 240


@pytest.fixture(scope="module")
def php() -> str:
    binary = shutil.which("php")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have php-cli: run make php")
        pytest.skip("PHP NOT INSTALLED — the differential signing tests did NOT run; "
                    "`make php` installs Debian's php-cli")
    return binary


def ask_php(php: str, batch: dict) -> dict:
    result = subprocess.run([php, str(ORACLE)], input=json.dumps(batch), capture_output=True, text=True,
                            timeout=240)
    if result.returncode != 0:
        pytest.fail(f"the PHP oracle failed (exit {result.returncode}): {result.stderr[-2000:]}")
    return json.loads(result.stdout)


# -- generated keys ---------------------------------------------------------------------------------------

WORDS = ["packages", "products", "artno", "line_no", "Line_No", "LINE", "quantity", "picking_zones", "x", "X",
         "a", "A", "é", "Åre", "grå", "日本", "😀", "item", "id", "v"]
SPACES = [" ", "  ", "\t", "\n", "\v", "\f", "\r", " \t"]
ODD = ["\x00", "\u00a0", "-", ".", "_", "[", "]", "[]", "/", ":", "@", "~", "\x7f", "+"]


def digits(rng: random.Random) -> str:
    """A digit run: plain, zero-led, all zeros, or long."""
    kind = rng.random()
    if kind < 0.45:
        return str(rng.randint(0, 20))
    if kind < 0.65:
        return "0" * rng.randint(1, 3) + str(rng.randint(0, 999))
    if kind < 0.75:
        return "0" * rng.randint(1, 4)
    if kind < 0.9:
        return str(rng.randint(0, 10**rng.randint(2, 25)))
    return str(rng.randint(100, 999)) + "0" * rng.randint(0, 3)


def piece(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.35:
        return rng.choice(WORDS)
    if kind < 0.6:
        return digits(rng)
    if kind < 0.78:
        return rng.choice(SPACES)
    if kind < 0.9:
        return rng.choice(ODD)
    word = rng.choice(WORDS)
    return word.upper() if rng.random() < 0.5 else word.swapcase()


def generated_key(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.4:  # bracket keys, as flatten makes them, sometimes with a twist
        key = rng.choice(WORDS)
        for _ in range(rng.randint(1, 4)):
            inner = digits(rng) if rng.random() < 0.6 else rng.choice(WORDS)
            if rng.random() < 0.15:
                inner = rng.choice(SPACES) + inner if rng.random() < 0.5 else inner + rng.choice(SPACES)
            key += f"[{inner}]"
        return key
    if kind < 0.5:
        return digits(rng)
    if kind < 0.55:
        return rng.choice(["", " ", "0", "00", "\x00", "\t"])
    return "".join(piece(rng) for _ in range(rng.randint(1, 6)))


def near(rng: random.Random, key: str) -> str:
    """A key close to ``key``: a space or zero slipped in, a digit changed, case flipped, a tail added."""
    if not key:
        return rng.choice(["", " ", "0"])
    at = rng.randint(0, len(key))
    change = rng.random()
    if change < 0.3:
        return key[:at] + rng.choice(SPACES) + key[at:]
    if change < 0.5:
        return key[:at] + "0" + key[at:]
    if change < 0.65:
        return key.swapcase()
    if change < 0.8:
        return key + rng.choice(SPACES + ["0", "1", "\x00"])
    return key[:at] + key[at + 1:]


def generated_keys(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    found: dict[str, None] = {}
    while len(found) < count:
        key = generated_key(rng)
        found[key] = None
        if rng.random() < 0.3 and len(found) < count:
            found[near(rng, key)] = None
    return list(found)


def test_strnatcmp_and_natural_order_match_php(php):
    rng = random.Random(20260101)
    keys = generated_keys(seed=1, count=KEY_COUNT)
    pairs = [(key, rng.choice(keys)) for key in keys]
    pairs += [(key, near(rng, key)) for key in keys]
    pairs += [(rng.choice(keys), rng.choice(keys)) for _ in range(10_000)]
    batches = [rng.sample(keys, 60) for _ in range(80)]
    batches.append(keys)  # all of them at once
    answer = ask_php(php, {"compare": pairs, "sort": batches})

    assert len(answer["compare"]) == len(pairs)
    wrong = [(a, b, ours, theirs) for (a, b), theirs in zip(pairs, answer["compare"])
             if (ours := strnatcmp(a, b)) != theirs]
    assert not wrong[:10], f"strnatcmp differs from PHP {answer['php_version']} on {len(wrong)} pairs"

    for number, (batch, expected) in enumerate(zip(batches, answer["sort"])):
        assert natural_sorted(batch) == expected, f"natural_sorted differs from PHP's uksort, batch {number}"
        assert sorted(batch, key=cmp_to_key(strnatcmp)) == expected, f"the port's sort differs: {number}"


# -- generated payloads -----------------------------------------------------------------------------------

def generated_value(rng: random.Random, depth: int):
    kind = rng.random()
    if depth < 4 and kind < 0.12:
        return [generated_value(rng, depth + 1) for _ in range(rng.choice([0, 1, 2, 3, 11, 12]))]
    if depth < 4 and kind < 0.24:
        return generated_dict(rng, depth + 1, rng.randint(0, 4))
    kind = rng.random()
    if kind < 0.3:
        return "".join(rng.choice(["a", "Å", "&", "=", " ", "1", "0.5", "%20", "+", "日", "😀", "\n", "\\",
                                   '"'])
                       for _ in range(rng.randint(0, 6)))
    if kind < 0.45:
        return rng.randint(-10**6, 10**6)
    if kind < 0.5:
        return rng.choice([2**63 - 1, -(2**63), 2**63, -(2**63) - 1, rng.randint(-10**25, 10**25)])
    if kind < 0.75:
        return generated_float(rng)
    return rng.choice([True, False, None, "", [], {}])


def generated_float(rng: random.Random) -> float:
    kind = rng.random()
    if kind < 0.3:
        return round(rng.uniform(-1000, 1000), rng.randint(0, 6))
    if kind < 0.5:
        return rng.uniform(-1, 1) * 10.0 ** rng.randint(-30, 30)
    if kind < 0.6:
        return rng.choice([0.0, -0.0, 0.1 + 0.2, 1e14, 1e15, 1e-4, 1e-5, 100.0, 1 / 3, 5e-324,
                           1.7976931348623157e308])
    # Any finite normal double: random sign, mantissa bits and exponent.
    return float.fromhex(f"{rng.choice('+-')}0x1.{rng.getrandbits(52):013x}p{rng.randint(-1022, 1023)}")


def generated_field(rng: random.Random) -> str | int:
    kind = rng.random()
    if kind < 0.6:
        return rng.choice(["warehouse_id", "order_no", "artno", "line_no", "quantity", "weight", "volume",
                           "packages", "products", "picking_zones", "draft", "note", "Åre", "日本", "a b"])
    if kind < 0.8:
        return generated_key(rng).replace("[", "(").replace("]", ")")
    if kind < 0.9:
        return rng.randint(0, 12)  # an int key, as {0: ...}
    return str(rng.randint(0, 12))


def generated_dict(rng: random.Random, depth: int, size: int) -> dict:
    return {generated_field(rng): generated_value(rng, depth) for _ in range(size)}


def generated_payload(rng: random.Random) -> dict:
    payload = generated_dict(rng, 1, rng.randint(1, 8))
    payload.update(api_key=rng.choice(["test_public_key", "YOUR_PUBLIC_KEY", "k"]), timestamp=rng.choice(
        [1700000000 + rng.randint(0, 10**6), str(1700000000 + rng.randint(0, 10**6))]),
        method=rng.choice(["GET", "POST", "PATCH", "DELETE"]),
        url=rng.choice(["http://dashboard.trademax.se/api/dispatch",
                        "https://api.trademax.test/vendor/receipt"]))
    return payload


def deep_payload(levels: int) -> dict:
    value: object = "bottom"
    for index in range(levels - 1):
        value = {f"l{index}": value} if index % 2 else [value, index]
    return {"deep": value, "api_key": "k"}


EDGE_PAYLOADS = [
    {"a": ["list"], "a[0]": "literal", "b": "B"},           # keys colliding after flattening
    {"a[0]": "literal", "a": ["list"], "b": "B"},
    {"z": 1, "a": {"b": "x"}, "a[b]": "y"},
    {5: "int key", "5": "str key", "05": "zero-led key"},     # one PHP key 5, and "05"
    {2: None, "b": "B", "2": {"x": 1}},                      # one JSON key: merged before flattening
    {"2": {"x": [1, 2]}, "b": "B", 2: None},
    {"o": [{0: "a", "0": ["b", "c"]}], 7: {"7": {7: "deep"}}},
    {"": "empty key", " ": "space key", "\x00": "nul key", "x": {"": "inner empty"}},
    {"external_reference": None, "draft": True, "flags": [True, False, None, 0, 1, "true"]},
    {"v": [0.30000000000000004, 1e20, 100.0, -0.0, 1e-7, 1e14, 1e13, 2**63, -(2**63) - 1, 9007199254740993]},
    {"packages": [{"products": [{"line_no": n, "artno": str(100000 + n)}]} for n in range(13)]},
    {"text": "åäö & = % + / ? # 😀 \\ \" \t end", "empty": [], "nothing": {}},
    deep_payload(MAX_DEPTH),
]


def test_sign_matches_php_on_generated_payloads(php):
    rng = random.Random(424242)
    payloads = EDGE_PAYLOADS + [generated_payload(rng) for _ in range(PAYLOAD_COUNT)]
    secrets = [rng.choice(["test_secret_key", "YOUR_SECRET_KEY", "nyckel-åäö-😀", "s" * 80]) for _ in payloads]
    bodies = [json.dumps(payload, ensure_ascii=bool(index % 2)) for index, payload in enumerate(payloads)]
    cases = [{"body": body, "secret": secret} for body, secret in zip(bodies, secrets)]
    answer = ask_php(php, {"sign": cases})
    assert len(answer["sign"]) == len(payloads) >= 200

    for index, (payload, secret, theirs) in enumerate(zip(payloads, secrets, answer["sign"])):
        where = f"payload {index} (PHP {answer['php_version']}): {json.dumps(payload)[:300]}"
        assert signed_pairs(payload) == [tuple(pair) for pair in theirs["pairs"]], f"pairs differ for {where}"
        assert canonical_string(payload) == theirs["canonical"], f"canonical string differs for {where}"
        assert sign(payload, secret) == theirs["signature"], f"signature differs for {where}"
        assert sign(json.loads(bodies[index]), secret) == theirs["signature"], (
            f"signature of the decoded body differs for {where}")
