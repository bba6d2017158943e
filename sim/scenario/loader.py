"""Load, merge and validate scenario TOML files against the declarative schema (sim.scenario.schema).

    sc = load_scenario("scenarios/base.toml")
    sc.data["revenue"]["initial"]          # every schema field present, defaults filled in
    sc2 = sc.with_overrides({"revenue.growth0": 0.4, "entity.Oracle.cash": 5.0})

What the loader guarantees about `Scenario.data`
-----------------------------------------------
* `extends` chains are resolved (tables deep-merged, scalars and arrays -- including
  arrays of tables -- replaced whole by the child), then every file's ``[patch]`` of
  dotted keys is applied, parents first (sim.scenario.patch: change one entity, contract
  or stake by name without copying its array).
* Every field of the schema is present: top-level fields, every section (a dict), every
  array of tables (a list of dicts; tranches under ``investment[i]["tranche"]``).
  Optional fields that are not set hold ``None``.
* float fields hold floats (ints are coerced), int fields ints, "date" fields decimal years
  (float), "schedule" fields ``dict[int, float]`` (calendar year -> $B) or ``None``.
* Every cross-reference, range and consistency rule below was checked.

Errors
------
Every problem is a `ScenarioError` whose text names the file, the line where it could be
found (best effort: tomllib reports no positions, so the loader scans the source text), the
dotted key (``contract["Oracle OCI"].payee``), what was expected and what was found, and a
"did you mean" suggestion for misspellings.  All problems of one validation pass are
collected; the first is the error's own file/key/line/message, the others are in
``err.errors``, and ``str(err)`` lists them all, one per line, ready for stderr.
Cross-checks (references, horizons, sums) run only when every field is well-typed.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import dataclass, field

__all__ = ["ScenarioError", "Scenario", "load_scenario", "scenario_from_dict"]



from .errors import ScenarioError, _describe
from .overrides import _assign, _is_schedule_year, _resolve_override_key
from .patch import PATCH, apply_patches, collect_patches, dropped_items_hint
from .source import _chain_source, _merge_chain, _read_toml, _resolve_chain, _Src
from .validate import _Ctx, _validate
from .writer import _canonical, _toml_value


@dataclass(frozen=True)
class Scenario:
    """A validated scenario. `data` is fully resolved (see the module docstring)."""

    name: str
    path: str | None
    data: dict
    source: str
    _srcs: tuple = field(default=(), repr=False, compare=False)
    _override_paths: frozenset = field(default=frozenset(), repr=False, compare=False)
    warnings: tuple = field(default=(), repr=False, compare=False)  # ScenarioErrors of unusual values

    @property
    def hash(self) -> str:
        """sha256 (hex) of a canonical JSON of `data`; stable across runs and machines."""
        blob = json.dumps(_canonical(self.data), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=True, allow_nan=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def __hash__(self) -> int:
        return int(self.hash[:16], 16)

    def years(self) -> list[int]:
        """Calendar years simulated: start_year .. start_year + horizon_years - 1."""
        t = self.data["time"]
        return list(range(t["start_year"], t["start_year"] + t["horizon_years"]))

    def with_overrides(self, overrides: dict[str, object]) -> "Scenario":
        """A copy with dotted keys replaced, fully re-validated.

        Keys: ``seed``, ``revenue.growth0``, ``entity.Oracle.cash`` or ``entity["Oracle"].cash``
        or ``entity[0].cash``, ``investment.NAME.tranche.0.amount`` (or ``...tranche[0]...``),
        ``stake.HOLDER->ISSUER.share`` (or ``stake.HOLDER.share`` when HOLDER holds one stake),
        ``entity.Oracle.maturities.2028`` (one schedule year), and whole arrays (``contract``).
        A value of None unsets an optional field (its default applies).
        """
        data = copy.deepcopy(self.data)
        paths = set(self._override_paths)
        notes = []
        for key, value in overrides.items():
            path = _resolve_override_key(data, key)
            _assign(data, path, value)
            paths.add(path[:-1] if _is_schedule_year(data, path) else path)
            notes.append(f"# {key} = {_toml_value(value) if value is not None else '(unset)'}")
        ctx = _Ctx(list(self._srcs), data, paths)
        new = _validate(data, ctx)
        source = self.source.rstrip("\n") + "\n\n# ===== overrides =====\n" + "\n".join(notes) + "\n"
        return Scenario(new["name"], self.path, new, source, self._srcs, frozenset(paths), tuple(ctx.warnings))


# --------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------


def _build(chain: list[_Src], path: str | None, source: str) -> Scenario:
    merged = _merge_chain(chain)
    if len(chain) > 1 and "name" not in chain[0].raw:
        inherited = merged.get("name")
        raise ScenarioError(chain[0].name, "name", None,
                            "missing required key: a scenario that extends another must set its own name"
                            + (f" (it would inherit {inherited!r} from {chain[1].name})"
                               if isinstance(inherited, str) else ""))
    patches = collect_patches(chain)  # [patch] tables (sim.scenario.patch), applied after validation
    merged.pop(PATCH, None)
    ctx = _Ctx(chain, merged)
    try:
        data = _validate(merged, ctx)
    except ScenarioError as err:
        hint = dropped_items_hint(chain, err)  # a child that copied an array and lost items: suggest [patch]
        if hint is None:
            raise
        raise ScenarioError(hint.file, hint.key, hint.line, hint.message, err.errors) from None
    warnings = list(ctx.warnings)
    if patches:  # the second pass sees every value as patched, so its warnings replace the first's
        warnings = []
        data = apply_patches(data, chain, patches, _validate, warnings)
    return Scenario(data["name"], path, data, source, tuple(chain), frozenset(), tuple(warnings))


def load_scenario(path) -> Scenario:
    """Load, merge (`extends`) and validate a scenario file; raise ScenarioError on any problem."""
    display = os.fspath(path)
    text, raw = _read_toml(display, display)
    first = _Src(display, text, raw)
    chain = _resolve_chain(first, os.path.realpath(display), os.path.dirname(display))
    return _build(chain, display, _chain_source(chain))


def scenario_from_dict(d: dict, source_name: str = "<dict>", base_dir=None) -> Scenario:
    """Validate a scenario given as a dict (as tomllib would return it, or already resolved).

    `extends` in the dict is resolved relative to `base_dir` (default: the current directory).
    """
    if not isinstance(d, dict):
        raise ScenarioError(source_name, "", None, f"expected a table (dict), found {_describe(d)}")
    first = _Src(source_name, None, copy.deepcopy(d))
    chain = _resolve_chain(first, None, os.fspath(base_dir) if base_dir is not None else os.getcwd())
    return _build(chain, None, _chain_source(chain))
