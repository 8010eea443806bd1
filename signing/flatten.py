"""Step 1: flatten nested params into bracket-keyed leaves, as PHP's reference signer does.

``{"packages": [{"weight": 55}]}`` becomes ``packages[0][weight]`` → ``"55"``: lists flatten to ``k[0]``,
``k[1]`` …, dicts to ``k[sub]``, an empty list or dict yields no pair at all, nothing is URL-encoded. Leaf
values are rendered by :mod:`signing.values` (step 2). Keys are str or int (an int renders in decimal; a
bool is refused: PHP would make ``true`` the key ``1``, which is never what the sender meant). Tuples are
lists (``json.dumps`` writes them as arrays); sets, bytes and other objects are refused with the key path.

Keys that are one JSON key (``1`` beside ``"1"`` in a dict) merge as PHP's ``json_decode`` merges them, and
keys that collide after flattening (a literal ``"a[0]"`` beside ``"a": [...]``) as PHP's flatten does: in
both cases one entry, at the first key's position, with the last value.

The walk is most of what :func:`signing.sign` costs, so it is written for speed: one loop per container
kind, the common leaves (``str``, in-range ``int``, ``float``) handled inline, anything else in
:func:`_other`, and keys assumed to be exact ``str`` until one is not (then the walk starts again on a copy
with merged keys, see :func:`_merge_keys`).
"""

from __future__ import annotations

from typing import Any, Callable

from .errors import NestingTooDeep, UnsignableKey, UnsignableValue
from .values import php_float, php_string

#: How many segments a flattened key may have (``a[b][c]`` has 3). Trademax's payloads need 5; a deeper
#: payload is a bug upstream, and the bound also stops a list that contains itself.
MAX_DEPTH = 32

_Add = Callable[[str], None]


def flatten(params: Any) -> list[tuple[str, str]]:
    """Flatten ``params`` (a dict) to ``(key, PHP string value)`` pairs, in PHP's iteration order.

    This is the order of the sender's JSON, not the signed order (see :func:`signing.canonical_string`).
    Raises a :class:`signing.SigningError` subclass naming the key path of the first bad key or value.
    """
    keys, values = flatten_leaves(params)
    if len(set(keys)) != len(keys):
        last = {key: index for index, key in enumerate(keys)}  # first position, last value: PHP's array
        keys, values = list(last), [values[index] for index in last.values()]
    pairs = list(zip(keys, values))
    for key, value in pairs:
        check_utf8(key, value)
    return pairs


def flatten_leaves(params: Any) -> tuple[list[str], list[str]]:
    """The walk behind :func:`flatten`: flattened keys and their rendered values, repeats kept.

    Does not check for lone surrogates (the signer finds them when it encodes the canonical string, and
    then asks :func:`flatten` where they are).
    """
    if not isinstance(params, dict):
        raise UnsignableValue("", "params must be a dict of the request's fields, "
                                  f"not a {type(params).__name__}")
    try:
        return _walk(params)
    except _KeyNotStr:
        # Rare: a dict has int (or str-subclass) keys. Two keys may then be one JSON key ({2: …, "2": …}),
        # which PHP's json_decode merges before anything is flattened. Walk a merged copy instead.
        return _walk(_merge_keys(params, "", 1))


class _KeyNotStr(Exception):
    """Raised inside the fast walk at the first key that is not an exact str."""


def _walk(params: dict) -> tuple[list[str], list[str]]:
    keys: list[str] = []
    values: list[str] = []
    add_key, add_value = keys.append, values.append
    for key, value in params.items():
        if type(key) is not str:
            raise _KeyNotStr
        kind = type(value)
        if kind is str:
            add_key(key)
            add_value(value)
        elif kind is dict:
            _walk_dict(value, key, 2, add_key, add_value)
        elif kind is list or kind is tuple:
            _walk_list(value, key, 2, add_key, add_value)
        else:
            _other(value, key, 2, add_key, add_value)
    return keys, values


def _walk_dict(mapping: dict, prefix: str, depth: int, add_key: _Add, add_value: _Add) -> None:
    if depth > MAX_DEPTH:
        raise NestingTooDeep(prefix, f"nested more than {MAX_DEPTH} levels deep")
    for key, value in mapping.items():
        if type(key) is not str:
            raise _KeyNotStr
        name = f"{prefix}[{key}]"
        kind = type(value)
        if kind is str:
            add_key(name)
            add_value(value)
        elif kind is int and -9223372036854775808 <= value <= 9223372036854775807:
            add_key(name)
            add_value(f"{value}")
        elif kind is float:
            add_key(name)
            add_value(php_float(value, name))
        elif kind is dict:
            _walk_dict(value, name, depth + 1, add_key, add_value)
        elif kind is list or kind is tuple:
            _walk_list(value, name, depth + 1, add_key, add_value)
        else:
            _other(value, name, depth + 1, add_key, add_value)


def _walk_list(items: list | tuple, prefix: str, depth: int, add_key: _Add, add_value: _Add) -> None:
    if depth > MAX_DEPTH:
        raise NestingTooDeep(prefix, f"nested more than {MAX_DEPTH} levels deep")
    for index, value in enumerate(items):
        name = f"{prefix}[{index}]"
        kind = type(value)
        if kind is str:
            add_key(name)
            add_value(value)
        elif kind is int and -9223372036854775808 <= value <= 9223372036854775807:
            add_key(name)
            add_value(f"{value}")
        elif kind is float:
            add_key(name)
            add_value(php_float(value, name))
        elif kind is dict:
            _walk_dict(value, name, depth + 1, add_key, add_value)
        elif kind is list or kind is tuple:
            _walk_list(value, name, depth + 1, add_key, add_value)
        else:
            _other(value, name, depth + 1, add_key, add_value)


def _other(value: Any, name: str, depth: int, add_key: _Add, add_value: _Add) -> None:
    """Anything the loops above do not handle inline: subclassed containers and every other leaf."""
    if isinstance(value, dict):  # OrderedDict, defaultdict …: json.dumps writes them as objects
        _walk_dict(value, name, depth, add_key, add_value)
    elif isinstance(value, (list, tuple)):  # a NamedTuple …: json.dumps writes it as an array
        _walk_list(value, name, depth, add_key, add_value)
    else:
        text = php_string(value, name)  # bool, None, float, big int, str/int subclasses; or refused
        add_key(name)
        add_value(text)


def _merge_keys(value: Any, path: str, depth: int) -> Any:
    """A copy of ``value`` whose dicts have exact str keys, merged as PHP's json_decode merges a repeated key.

    ``{2: "a", "x": 1, "2": "b"}`` becomes ``{"2": "b", "x": 1}``: the first position, the last value (a
    Python dict keeps the position of a key it updates, as a PHP array does). Past the nesting bound the
    value is left as it is, for the walk to refuse with the right path.
    """
    if depth > MAX_DEPTH + 1:
        return value
    if isinstance(value, dict):
        merged = {}
        for key, child in value.items():
            text = key if type(key) is str else _key_text(key, path)
            merged[text] = _merge_keys(child, f"{path}[{text}]" if path else text, depth + 1)
        return merged
    if isinstance(value, (list, tuple)):
        return [_merge_keys(child, f"{path}[{index}]", depth + 1) for index, child in enumerate(value)]
    return value


def _key_text(key: Any, prefix: str) -> str:
    """A non-str key as PHP would print it: ints in decimal; bools and everything else refused."""
    if isinstance(key, int) and not isinstance(key, bool):
        return int.__repr__(key)
    if isinstance(key, str):
        return str.__str__(key)
    raise UnsignableKey(f"{prefix}[…]" if prefix else "",
                        f"a key must be a str or int, not a {type(key).__name__}")


def check_utf8(key: str, value: str) -> None:
    """Refuse text that is not valid UTF-8 (a lone surrogate): PHP's json_decode rejects it."""
    for text, error in ((key, UnsignableKey), (value, UnsignableValue)):
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise error(key, "text is not valid UTF-8 (a lone surrogate)") from None
