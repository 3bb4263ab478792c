"""The watchlist (CONTRACTS §2): which brands to monitor and which risk categories to score.

Loaded once at job start and validated strictly: a bad watchlist fails with one line that
names the entry and the problem, because a silently ignored alias means missed crises.
Optional extensions (ignored by older readers): per-category `kind`, and a top-level
`signals` mapping with extra `legal` / `trending` words for the per-post flags.
Query words: per brand `exclude` (a post holding any of them does not count for the brand)
and `require` (if given, at least one must also appear); per category `exclude` (a post
holding any of them does not count for that category). Words are compared in their folded
form (scoring.folding: simplified, lower case, half-width), so duplicates are found
across scripts too. Validation is linear in the size of the watchlist (dict lookups only):
10,000 brands load in about a second.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scoring.folding import fold

GENERAL = "general"
CATEGORY_KINDS = ("legal", "privacy", "user_rights", "safety", "trust", "outage", "other")
SIGNAL_NAMES = ("legal", "trending")


class WatchlistError(ValueError):
    """One-line description of the first problem found in a watchlist."""


@dataclass(frozen=True, slots=True)
class Brand:
    name: str
    aliases: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    require: tuple[str, ...] = ()

    @property
    def words(self) -> tuple[str, ...]:
        """The canonical name counts as an alias too."""
        return tuple(dict.fromkeys((self.name, *self.aliases)))


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    severity: float
    terms: tuple[str, ...]
    kind: str = "other"
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Watchlist:
    brands: tuple[Brand, ...]
    categories: tuple[Category, ...]
    signals: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def category(self, name: str) -> Category | None:
        return _index(self.categories).get(name)

    def brand(self, name: str) -> Brand | None:
        return _index(self.brands).get(name)


_INDEXES: dict[int, tuple[tuple, dict]] = {}


def _index(entries: tuple) -> dict:
    """name -> entry of a brands/categories tuple, built once per tuple (a 10,000-brand
    watchlist would otherwise scan the tuple on every lookup)."""
    held = _INDEXES.get(id(entries))
    if held is None or held[0] is not entries:
        if len(_INDEXES) > 64:
            _INDEXES.clear()
        held = _INDEXES[id(entries)] = (entries, {e.name: e for e in entries})
    return held[1]


def _words(value: Any, where: str, what: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise WatchlistError(f"{where}: {what} must be a list of strings, got {type(value).__name__}")
    out: dict[str, None] = {}
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise WatchlistError(f"{where}: {what}[{i}] must be a string, got {type(item).__name__}")
        text = str(item).strip()
        if not text:
            raise WatchlistError(f"{where}: {what}[{i}] is empty")
        out[text] = None
    return tuple(out)


def _list_or_empty(entry: dict[str, Any], key: str) -> Any:
    """An absent key or a YAML null (`aliases:` with nothing after it) is an empty list."""
    value = entry.get(key)
    return [] if value is None else value


def _name(entry: dict[str, Any], where: str) -> str:
    name = entry.get("name")
    if name is None:
        raise WatchlistError(f"{where}: missing 'name'")
    if isinstance(name, bool) or not isinstance(name, (str, int)) or not str(name).strip():
        raise WatchlistError(f"{where}: 'name' must be a non-empty string")
    return str(name).strip()


def _unknown_keys(entry: dict[str, Any], known: set[str], where: str) -> None:
    extra = sorted(set(entry) - known)
    if extra:
        raise WatchlistError(f"{where}: unknown key(s) {', '.join(map(str, extra))} (known: {', '.join(sorted(known))})")


def parse_watchlist(data: Any, source: str = "watchlist") -> Watchlist:
    """Validate decoded YAML into a Watchlist; raises WatchlistError on the first problem."""
    if not isinstance(data, dict):
        raise WatchlistError(f"{source}: expected a mapping with 'brands' and 'categories'")
    _unknown_keys(data, {"brands", "categories", "signals"}, source)
    raw_brands = data.get("brands")
    if not isinstance(raw_brands, list) or not raw_brands:
        raise WatchlistError(f"{source}: 'brands' must be a non-empty list")
    brands: list[Brand] = []
    names: set[str] = set()
    owner: dict[str, str] = {}  # folded alias -> brand
    for i, entry in enumerate(raw_brands):
        where = f"{source}: brands[{i}]"
        if not isinstance(entry, dict):
            raise WatchlistError(f"{where}: expected a mapping with name and aliases")
        _unknown_keys(entry, {"name", "aliases", "exclude", "require"}, where)
        name = _name(entry, where)
        where = f"{source}: brand {name!r}"
        aliases = _words(_list_or_empty(entry, "aliases"), where, "aliases")  # [] is fine
        exclude = _words(_list_or_empty(entry, "exclude"), where, "exclude")
        require = _words(_list_or_empty(entry, "require"), where, "require")
        brand = Brand(name=name, aliases=aliases, exclude=exclude, require=require)
        if name in names:
            raise WatchlistError(f"{where}: duplicate brand name")
        names.add(name)
        own = set()
        for word in brand.words:
            key = fold(word)
            if key in owner and owner[key] != name:
                raise WatchlistError(f"{where}: alias {word!r} is also used by brand {owner[key]!r}")
            owner[key] = name
            own.add(key)
        for what, words in (("exclude", exclude), ("require", require)):
            for word in words:
                if fold(word) in own:
                    raise WatchlistError(f"{where}: {what} word {word!r} is also one of the brand's own names")
        if set(map(fold, exclude)) & set(map(fold, require)):
            both = next(w for w in exclude if fold(w) in set(map(fold, require)))
            raise WatchlistError(f"{where}: {both!r} is in both exclude and require")
        brands.append(brand)
    raw_cats = data.get("categories", [])
    if not isinstance(raw_cats, list):
        raise WatchlistError(f"{source}: 'categories' must be a list")
    categories: list[Category] = []
    category_names: set[str] = set()
    for i, entry in enumerate(raw_cats):
        where = f"{source}: categories[{i}]"
        if not isinstance(entry, dict):
            raise WatchlistError(f"{where}: expected a mapping with name, severity and terms")
        _unknown_keys(entry, {"name", "severity", "terms", "kind", "exclude"}, where)
        name = _name(entry, where)
        where = f"{source}: category {name!r}"
        if name == GENERAL:
            raise WatchlistError(f"{where}: {GENERAL!r} is reserved for posts that name no category")
        if name in category_names:
            raise WatchlistError(f"{where}: duplicate category name")
        category_names.add(name)
        severity = entry.get("severity")
        if isinstance(severity, bool) or not isinstance(severity, (int, float)):
            raise WatchlistError(f"{where}: severity must be a number in 0..1, got {severity!r}")
        if not 0.0 <= float(severity) <= 1.0:
            raise WatchlistError(f"{where}: severity {severity} is outside 0..1")
        if "terms" not in entry:
            raise WatchlistError(f"{where}: missing 'terms'")
        terms = _words(entry["terms"], where, "terms")
        if not terms:
            raise WatchlistError(f"{where}: terms is empty")
        kind = entry.get("kind", "other")
        if kind not in CATEGORY_KINDS:
            raise WatchlistError(f"{where}: kind must be one of {', '.join(CATEGORY_KINDS)}, got {kind!r}")
        exclude = _words(_list_or_empty(entry, "exclude"), where, "exclude")
        folded_terms = set(map(fold, terms))
        for word in exclude:
            if fold(word) in folded_terms:
                raise WatchlistError(f"{where}: exclude word {word!r} is also one of its terms")
        categories.append(Category(name=name, severity=float(severity), terms=terms, kind=kind, exclude=exclude))
    raw_signals = data.get("signals") or {}
    if not isinstance(raw_signals, dict):
        raise WatchlistError(f"{source}: 'signals' must be a mapping of legal/trending word lists")
    _unknown_keys(raw_signals, set(SIGNAL_NAMES), f"{source}: signals")
    signals = {k: _words(v, f"{source}: signals", k) for k, v in raw_signals.items()}
    return Watchlist(brands=tuple(brands), categories=tuple(categories), signals=signals)


def load_watchlist(path: str | Path) -> Watchlist:
    path = Path(path)
    if not path.is_file():
        raise WatchlistError(f"watchlist file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "syntax error"
        raise WatchlistError(f"watchlist file {path} is not valid YAML: {first}") from None
    except UnicodeDecodeError:
        raise WatchlistError(f"watchlist file {path} is not UTF-8") from None
    return parse_watchlist(data, source=str(path))
