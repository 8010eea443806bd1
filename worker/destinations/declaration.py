"""What a destination declares about its settings, once: its variables (name, what to put there, which
are secret), its base URL (unset: the destination is off), its credentials, its ``*_LOCATIONS``, whether
it is a bulk API, its default rate and batch size — the way a provider of hookdeck/outpost declares its
config and credential fields, secrets flagged ``sensitive``.

Each destination package has a ``declaration`` module holding its :class:`Declaration`
(``worker/destinations/kaching/declaration.py``); ``worker.destinations.declared`` lists them.  What
follows derives from them, so none of it names a destination:

- ``worker.settings``: every variable read once and validated (a bad one is named), secrets kept out of
  ``repr``, ``require_credentials`` naming the first unset credential, each destination's flow control
  (``<PREFIX>_MAX_RPS`` ..., and ``<PREFIX>_BATCH_MAX`` / ``_BATCH_SECONDS`` for a bulk API);
- ``worker.redaction``: the secret values scrubbed from logs, Sentry and errors, the secret-bearing names
  (``SECRET_KEYS``) never stored;
- ``wms-relay check`` (its ``*_LOCATIONS``, its base URL), ``wms-relay demo``, the benchmarks' harness and
  the test fixtures (the sandboxes' credentials: each variable's ``example``, a secret made fresh);
- its catalog (``<PREFIX>_CATALOG``: ``identity`` or ``required``, what becomes of an artno without a row —
  worker.store.catalog, worker.delivery.catalog_wait) and whether its rows need a title
  (``wms-relay catalog import`` refuses a file without one).

Pure data, and importing nothing of worker: ``worker.settings`` (layer 1) reads the declarations without
importing the destinations' code (layer 2; docs/architecture.md says why).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

# What a variable holds (worker.settings reads and checks each kind).
TEXT = "text"  # stripped; a secret is kept as given
URL = "url"  # an http(s) URL, "/" added at the end; unset: ``default`` ("" for a destination that is off)
LOCATIONS = "locations"  # warehouse=location pairs (worker.settings.Locations)
NUMBER = "number"  # a number >= ``minimum``
CHOICE = "choice"  # one of ``choices`` (case-insensitive; kept lower-case)
KINDS = (TEXT, URL, LOCATIONS, NUMBER, CHOICE)
# A catalog's modes (``<PREFIX>_CATALOG``): an artno without a row is its own product id (identity), or is not
# sent until a row is imported (required).
IDENTITY, REQUIRED = "identity", "required"
CATALOG_MODES = (IDENTITY, REQUIRED)


@dataclass(frozen=True)
class Variable:
    """One environment variable of a destination.

    ``secret``: the value never leaves the process — kept out of ``repr``, scrubbed from logs, Sentry and
    error texts, and its lower-case name is a secret-bearing key no store accepts.  ``example``: a value
    the destination's sandbox accepts (the demo, the benchmarks and the tests use it; a secret gets a
    fresh value each run instead)."""

    name: str
    description: str
    kind: str = TEXT
    secret: bool = False
    default: str | float = ""
    minimum: float = 0.0
    example: str = ""
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind {self.kind!r} is none of {', '.join(KINDS)}")
        if (self.kind == CHOICE) != bool(self.choices) or \
                (self.kind == CHOICE and self.default not in self.choices):
            raise ValueError(f"{self.name}: a choice variable has choices, its default among them")
        if self.name != self.name.upper():
            raise ValueError(f"{self.name}: a variable's name is upper-case")

    @property
    def attribute(self) -> str:
        """Its name as a Settings attribute (``KACHING_API_KEY`` → ``settings.kaching_api_key``)."""
        return self.name.lower()


@dataclass(frozen=True)
class Declaration:
    """One destination's settings (see the module docstring).

    ``prefix`` starts every variable of it (``KACHING``), flow control's too (``KACHING_MAX_RPS``);
    ``base_url`` turns it on; ``credentials`` are required when it is on, in this order;
    ``locations`` maps WMS warehouses to its own (None: it does not route by warehouse); ``others`` are
    its remaining variables.  ``secret_keys``: the names its secrets travel under (a query parameter, a
    header, a JSON field) — their values are removed wherever they appear and never stored.
    ``bulk``: it takes many stock counts per request (its counts are batched); ``max_rps`` and
    ``batch_max`` are its default rate limit (0: none) and batch size (``<PREFIX>_MAX_RPS``,
    ``<PREFIX>_BATCH_MAX``).  ``catalog``: its ``<PREFIX>_CATALOG`` variable (a CHOICE among
    :data:`CATALOG_MODES`, its default the destination's) when it names products by a catalog row (None:
    it has no catalog); ``catalog_needs_title``: its rows must carry a title."""

    name: str
    title: str
    prefix: str
    base_url: Variable
    credentials: tuple[Variable, ...] = ()
    locations: Variable | None = None
    others: tuple[Variable, ...] = ()
    secret_keys: tuple[str, ...] = ()
    bulk: bool = False
    max_rps: float = 0.0
    batch_max: int = 0
    catalog: Variable | None = None
    catalog_needs_title: bool = False

    def __post_init__(self) -> None:
        for variable in self.variables:
            if not variable.name.startswith(self.prefix + "_"):
                raise ValueError(f"{self.name}: {variable.name} does not start with {self.prefix}_")
        if self.base_url.kind != URL or (self.locations is not None and self.locations.kind != LOCATIONS):
            raise ValueError(f"{self.name}: base_url is a URL variable, locations a LOCATIONS one")
        names = [variable.name for variable in self.variables]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name} declares a variable twice")
        if self.batch_max and not self.bulk:
            raise ValueError(f"{self.name}: a batch size for an API that is not bulk")
        if self.catalog is not None and (self.catalog.kind != CHOICE
                                         or not set(self.catalog.choices) <= set(CATALOG_MODES)):
            raise ValueError(f"{self.name}: its catalog variable is a choice among "
                             f"{', '.join(CATALOG_MODES)}")
        if self.catalog_needs_title and self.catalog is None:
            raise ValueError(f"{self.name}: catalog rows that need a title, without a catalog")

    def __repr__(self) -> str:
        return f"Declaration({self.name!r})"

    @property
    def variables(self) -> tuple[Variable, ...]:
        """Every variable it declares: base URL, credentials, locations, the others."""
        locations = (self.locations,) if self.locations is not None else ()
        catalog = (self.catalog,) if self.catalog is not None else ()
        return (self.base_url, *self.credentials, *locations, *catalog, *self.others)

    @property
    def secrets(self) -> tuple[Variable, ...]:
        return tuple(variable for variable in self.variables if variable.secret)

    def sandbox_credentials(self, fresh_secret: Callable[[], str]) -> dict[str, str]:
        """Credentials its sandbox (``wms-relay sandbox --api <name>``, which reads the same variables)
        and the relay's client both take: each credential's ``example``, each secret ``fresh_secret()``."""
        return {variable.name: fresh_secret() if variable.secret else variable.example
                for variable in self.credentials}


class Declarations:
    """Every destination's declaration, in the table's order (the first is the one the WMS publishes to).
    Built by :func:`declarations_of`, which checks that no two share a name, a prefix or a variable."""

    def __init__(self, declarations: Iterable[Declaration]) -> None:
        self._by_name = {declaration.name: declaration for declaration in declarations}

    def __iter__(self) -> Iterator[Declaration]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> Declaration:
        found = self._by_name.get(name)
        if found is None:
            raise KeyError(f"no destination {name!r} (known: {', '.join(self._by_name)})")
        return found

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Declarations) and tuple(self) == tuple(other)

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"Declarations({', '.join(self._by_name)})"


def declarations_of(declarations: Iterable[Declaration]) -> Declarations:
    """The table of ``declarations``; a ValueError naming what two of them share."""
    found = tuple(declarations)
    seen: dict[str, str] = {}
    for declaration in found:
        for what in (f"the name {declaration.name!r}", f"the prefix {declaration.prefix}_",
                     *(f"the variable {variable.name}" for variable in declaration.variables)):
            if what in seen:
                raise ValueError(f"{seen[what]} and {declaration.name} both declare {what}")
            seen[what] = declaration.name
    return Declarations(found)
