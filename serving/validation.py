"""Request validation against the curated schema's SERVING environment.

Why here and not only in the model: a SavedModel fed a string where a float
belongs fails with a TF stack trace, and a value outside the training domain
(a negative fare, an unknown payment type) is silently scored. The schema
(``tensorflow_metadata`` Schema, the same file the pipeline's data gate
uses) already says what a valid serving row is: which features exist in
SERVING, which are required (``presence.min_fraction: 1``), their types,
value counts and domains. Each problem becomes a 400 naming the row, the
feature and what was expected.

Speed: this runs on every request before the model, so a body's rows are
checked a column at a time first (``_column_passes``: the set of value types,
``min``/``max`` against the bounds, the domain as one set inclusion -- C loops,
not a Python call per value). That pass only says "all valid"; any column it
cannot vouch for sends the body through the per-row checks, which find the
first problem and word the error, so errors are the same either way.
"""
import base64
import dataclasses
import math
from typing import AbstractSet, Any, Callable, Dict, FrozenSet, Iterable, List, Mapping, Optional, Sequence

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from serving.columns import same_keys, transpose
from serving.errors import BadRequest, shorten

SERVING = "SERVING"
_TYPE_NAMES = {"int": "an INT (integer)", "float": "a FLOAT (number)", "bytes": "a BYTES (string)"}
_KINDS = {schema_pb2.INT: "int", schema_pb2.FLOAT: "float", schema_pb2.BYTES: "bytes"}


@dataclasses.dataclass(frozen=True)
class FeatureRule:
    """What one serving feature accepts."""
    name: str
    kind: str                       # "int", "float" or "bytes"
    required: bool
    min_values: int = 0
    max_values: Optional[int] = None
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    allowed: Optional[FrozenSet[str]] = None

    def expected(self) -> str:
        text = _TYPE_NAMES[self.kind]
        if self.minimum is not None or self.maximum is not None:
            text += f" in [{_fmt(self.minimum, '-inf')}, {_fmt(self.maximum, 'inf')}]"
        if self.allowed is not None:
            text += f" from the domain {sorted(self.allowed)}"
        return text


_INT64_MIN, _INT64_MAX = -2 ** 63, 2 ** 63 - 1
_FLOAT32_MAX = 3.4028234663852886e38  # FLOAT features are float32 tensors in the model
# Value types a column may hold to be checked as a whole (bool is its own type, not int).
_STR, _INT, _NUMBER = frozenset({str}), frozenset({int}), frozenset({int, float})


def _fmt(value: Optional[float], unbounded: str) -> str:
    if value is None:
        return unbounded
    return str(int(value)) if float(value).is_integer() else str(value)


def _decode_b64(item: Mapping[str, Any], fail: Callable[[str], None]) -> str:
    """A {"b64": ...} value as text for the domain check; 400 unless it is strict base64."""
    if not isinstance(item["b64"], str):
        fail(" (b64 must hold a base64 string)")
    try:
        return base64.b64decode(item["b64"], validate=True).decode("utf-8", "replace")
    except (ValueError, TypeError):
        fail(" (invalid base64)")
    return ""


def in_environment(feature: Any, schema: Any, environment: str) -> bool:
    """TFMD's rule: explicit in_environment wins, else default environments
    minus not_in_environment."""
    if feature.in_environment:
        return environment in feature.in_environment
    if environment in feature.not_in_environment:
        return False
    return environment in schema.default_environment or not schema.default_environment


def _rule(feature: Any, string_domains: Mapping[str, Iterable[str]]) -> Optional[FeatureRule]:
    kind = _KINDS.get(feature.type)
    if kind is None:
        return None  # STRUCT / TYPE_UNKNOWN: nothing to check at the REST level
    required = (feature.HasField("presence") and feature.presence.min_fraction >= 1.0)
    min_values, max_values = 0, None
    if feature.HasField("value_count"):
        min_values = feature.value_count.min
        max_values = feature.value_count.max or None
    minimum = maximum = None
    allowed = None
    domain = feature.WhichOneof("domain_info")
    if domain == "int_domain":
        d = feature.int_domain
        minimum = float(d.min) if d.HasField("min") else None
        maximum = float(d.max) if d.HasField("max") else None
    elif domain == "float_domain":
        d = feature.float_domain
        minimum = float(d.min) if d.HasField("min") else None
        maximum = float(d.max) if d.HasField("max") else None
    elif domain == "domain" and feature.domain in string_domains:
        allowed = frozenset(string_domains[feature.domain])
    elif domain == "string_domain":
        allowed = frozenset(feature.string_domain.value)
    return FeatureRule(feature.name, kind, required, min_values, max_values, minimum, maximum, allowed)


class SchemaValidator:
    """Checks request features against one schema environment."""

    def __init__(self, rules: Mapping[str, FeatureRule], excluded: Iterable[str], source: str) -> None:
        self.rules = dict(rules)
        self.excluded = frozenset(excluded)
        self.source = source
        self._names = frozenset(self.rules)
        self._required = frozenset(name for name, rule in self.rules.items() if rule.required)

    @classmethod
    def from_file(cls, path: str, environment: str = SERVING) -> "SchemaValidator":
        schema = schema_pb2.Schema()
        with open(path, encoding="utf-8") as f:
            text_format.Parse(f.read(), schema)
        domains = {d.name: list(d.value) for d in schema.string_domain}
        rules, excluded = {}, []
        for feature in schema.feature:
            if not in_environment(feature, schema, environment):
                excluded.append(feature.name)
                continue
            rule = _rule(feature, domains)
            if rule is not None:
                rules[feature.name] = rule
        return cls(rules, excluded, path)

    def only(self, names: Iterable[str]) -> "SchemaValidator":
        """The rules of the features the model takes (the dataset config's): a
        schema feature the model has no input for is then refused as unknown,
        as the model's signature would refuse it."""
        wanted = set(names)
        return SchemaValidator({n: r for n, r in self.rules.items() if n in wanted}, self.excluded,
                               self.source)

    @property
    def kinds(self) -> Dict[str, str]:
        """Feature -> "int"/"float"/"bytes": how classify examples are typed."""
        return {name: rule.kind for name, rule in self.rules.items()}

    # ------------------------------------------------------------ values

    def check_value(self, name: str, value: Any, where: str) -> None:
        """One feature value (a scalar or a list of at most value_count.max values)."""
        rule = self.rules.get(name)
        if rule is None:
            if name in self.excluded:
                raise BadRequest(f"{where}: feature '{name}' is not a {SERVING} feature in the "
                                 f"schema {self.source} (it must not be sent at serving time)")
            return
        values = value if isinstance(value, list) else [value]
        if value is None or (isinstance(value, list) and not value):
            if rule.required:
                raise BadRequest(f"{where}: feature '{name}' is required, expected {rule.expected()}, "
                                 f"got {shorten(value)}")
            return
        if rule.max_values is not None and len(values) > rule.max_values:
            raise BadRequest(f"{where}: feature '{name}': expected at most {rule.max_values} "
                             f"value(s), got {len(values)}")
        if len(values) < rule.min_values:
            raise BadRequest(f"{where}: feature '{name}': expected at least {rule.min_values} "
                             f"value(s), got {len(values)}")
        for item in values:
            self._check_scalar(rule, item, where)

    def _check_scalar(self, rule: FeatureRule, item: Any, where: str) -> None:
        def fail(problem: str = "") -> None:
            raise BadRequest(f"{where}: feature '{rule.name}': expected {rule.expected()}, "
                             f"got {shorten(item)}{problem}")

        if rule.kind == "bytes":
            if isinstance(item, dict) and set(item) == {"b64"}:
                item = _decode_b64(item, fail)
            elif not isinstance(item, str):
                fail()
            if rule.allowed is not None and item not in rule.allowed:
                fail(" (not in the domain)")
            return
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            fail()
        # Python ints are unbounded: compare exactly, never through float() (which overflows).
        if isinstance(item, float) and not math.isfinite(item):
            fail(" (not finite: beyond the float range)")
        if rule.kind == "int":
            if isinstance(item, float) and not item.is_integer():
                fail(" (not an integer)")
            if not _INT64_MIN <= item <= _INT64_MAX:
                fail(" (outside the int64 range)")
        elif not -_FLOAT32_MAX <= item <= _FLOAT32_MAX:
            fail(" (outside the float32 range)")
        if rule.minimum is not None and item < rule.minimum:
            fail(" (below the minimum)")
        if rule.maximum is not None and item > rule.maximum:
            fail(" (above the maximum)")

    # ------------------------------------------------------------ bodies

    def _check_required(self, names: Mapping[str, Any], where: str) -> None:
        """Required features are enforced only when the body speaks the schema's
        language (at least one known feature), so other signatures pass through."""
        if not any(name in self.rules for name in names):
            return
        missing = [name for name, rule in self.rules.items() if rule.required and name not in names]
        if missing:
            rule = self.rules[missing[0]]
            raise BadRequest(f"{where}: missing required feature '{rule.name}' "
                             f"(expected {rule.expected()}); all missing: {missing}")

    def _check_known(self, names: Mapping[str, Any], where: str) -> None:
        """In a body that speaks the schema's language, a name the schema does not
        know is refused: a misspelt optional feature would otherwise be scored
        as missing without a word."""
        if not any(name in self.rules for name in names):
            return
        unknown = sorted(name for name in names if name not in self.rules and name not in self.excluded)
        if unknown:
            raise BadRequest(f"{where}: unknown feature(s) {[shorten(n) for n in unknown]}; the "
                             f"schema {self.source} has the {SERVING} features {sorted(self.rules)}")

    def check_row(self, row: Mapping[str, Any], where: str) -> None:
        """One instance / example (row format)."""
        self._check_known(row, where)
        self._check_required(row, where)
        for name, value in row.items():
            self.check_value(name, value, where)

    def has_missing(self, row: Mapping[str, Any]) -> bool:
        """Whether a row of schema features leaves one out, null or empty (only optional
        ones pass ``check_row``); False for a row that speaks another language."""
        if not any(name in self.rules for name in row):
            return False
        return any(row.get(name) is None or row.get(name) == [] for name in self.rules)

    def any_missing(self, rows: List[Any]) -> bool:
        """Whether any dict row of ``rows`` ``has_missing``; a row holding every schema
        feature (the usual case) is cleared without a call per feature."""
        names = self._names
        return any(type(row) is dict and not (row.keys() == names and None not in row.values()
                                              and [] not in row.values())
                   and self.has_missing(row) for row in rows)

    def check_instances(self, instances: List[Any]) -> bool:
        """Checks row-format instances; True when the column pass vouched for every
        row and each holds every schema feature, so ``any_missing(instances)`` is
        False without walking the rows again (the caller's shortcut)."""
        if self._rows_pass(instances):
            return instances[0].keys() == self._names
        for index, row in enumerate(instances):
            if isinstance(row, dict):
                self.check_row(row, f"instance {index}")
        return False

    def _rows_pass(self, rows: List[Any]) -> bool:
        """True when ``rows`` are dicts with the same known keys, all required ones
        among them, and every column passes (``_column_passes``); False means "check
        row by row", which finds and words the first problem."""
        if not rows or type(rows[0]) is not dict:
            return False
        keys = rows[0].keys()
        if not self._keys_pass(keys) or not same_keys(rows, keys):
            return False
        names = list(keys)
        return all(self._column_passes(self.rules[name], column)
                   for name, column in zip(names, transpose(rows, names)))

    def _keys_pass(self, keys: AbstractSet[str]) -> bool:
        """True when every key is a known feature and every required feature is there."""
        return self._names >= keys and keys >= self._required

    def _column_passes(self, rule: FeatureRule, column: Sequence[Any]) -> bool:
        """True only if every value is a plain scalar (one value) that ``check_value``
        accepts; False when unsure (lists, nulls, bools, b64, a float for an INT, a
        sum that is not finite), so the per-row check decides.

        Bounds are compared exactly, as ``_check_scalar`` does: ``min``/``max`` of
        Python ints and floats, after the sum has ruled out NaN and infinities.
        """
        if rule.min_values > 1 or (rule.max_values is not None and rule.max_values < 1):
            return False
        types = set(map(type, column))
        if rule.kind == "bytes":
            return types == _STR and (rule.allowed is None or rule.allowed.issuperset(column))
        if rule.kind == "int":
            if types != _INT:
                return False
            low, high = min(column), max(column)
            if low < _INT64_MIN or high > _INT64_MAX:
                return False
        else:
            if not types or not types <= _NUMBER:
                return False
            try:
                if not math.isfinite(sum(column)):
                    return False  # NaN, an infinity, or a sum beyond float range: look closer
            except OverflowError:  # an int too large for a float
                return False
            low, high = min(column), max(column)
            if low < -_FLOAT32_MAX or high > _FLOAT32_MAX:
                return False
        return ((rule.minimum is None or low >= rule.minimum)
                and (rule.maximum is None or high <= rule.maximum))

    def check_inputs(self, inputs: Mapping[str, Any]) -> None:
        """Columnar ``inputs``: one list of per-row values per feature."""
        if (self._keys_pass(inputs.keys())
                and all(type(column) is list and column
                        and self._column_passes(self.rules[name], column)
                        for name, column in inputs.items())):
            return
        self._check_known(inputs, "'inputs'")
        self._check_required(inputs, "'inputs'")
        for name, column in inputs.items():
            rows = column if isinstance(column, list) else [column]
            for index, value in enumerate(rows):
                self.check_value(name, value, f"'inputs' row {index}")

    def check_examples(self, examples: List[Any], context: Optional[Mapping[str, Any]]) -> None:
        """Each example with the shared ``context``; the context's own values are
        checked too, even those every example overrides."""
        if context:
            self._check_known(context, "'context'")
            for name, value in context.items():
                self.check_value(name, value, "'context'")
        for index, example in enumerate(examples):
            if isinstance(example, dict):
                merged = dict(context or {})
                merged.update(example)
                self.check_row(merged, f"example {index}")
