"""Feature contracts: the declared schema (names, Arrow types, nullability) of a table.

Types are written as Arrow type strings (``"int64"``, ``"float64"``, ``"string"``,
``"date32"``, ``"timestamp[us, tz=UTC]"``) so that a contract can be declared in a DAG
file without importing pyarrow at parse time.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops.exceptions import ArgumentError, ContractError, DuplicateKeyError, format_names

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence

    import pyarrow as pa

_SIMPLE_TYPES = {
    "bool": "bool_",
    "int8": "int8",
    "int16": "int16",
    "int32": "int32",
    "int64": "int64",
    "uint8": "uint8",
    "uint16": "uint16",
    "uint32": "uint32",
    "uint64": "uint64",
    "float32": "float32",
    "float": "float32",
    "float64": "float64",
    "double": "float64",
    "string": "string",
    "large_string": "large_string",
    "binary": "binary",
    "date32": "date32",
    "date32[day]": "date32",
}
_TIMESTAMP = re.compile(r"^timestamp\[(s|ms|us|ns)(?:,\s*tz=([^\]]+))?\]$")


def check_type_spec(spec: str) -> None:
    """Raise :class:`ArgumentError` unless ``spec`` names a supported Arrow type.

    Needs no pyarrow, so contracts can be declared and checked at DAG-parse time.
    """
    name = spec.strip() if isinstance(spec, str) else spec
    if name in _SIMPLE_TYPES or _TIMESTAMP.match(str(name)):
        return
    raise ArgumentError(
        f"Unknown Arrow type {spec!r} in a feature contract. Use one of "
        f"{format_names(sorted(_SIMPLE_TYPES), limit=30)} or 'timestamp[us, tz=UTC]'."
    )


def parse_arrow_type(spec: str) -> pa.DataType:
    """The Arrow type named by ``spec`` (the form ``str(pa_type)`` prints)."""
    import pyarrow as pa

    check_type_spec(spec)
    name = spec.strip()
    if name in _SIMPLE_TYPES:
        return getattr(pa, _SIMPLE_TYPES[name])()
    match = _TIMESTAMP.match(name)
    assert match is not None  # guaranteed by check_type_spec
    return pa.timestamp(match.group(1), tz=match.group(2))


def _family(t: pa.DataType) -> str:
    import pyarrow.types as pt

    if pt.is_integer(t):
        return "integer"
    if pt.is_floating(t):
        return "floating"
    if pt.is_string(t) or pt.is_large_string(t):
        return "string"
    if pt.is_timestamp(t):
        return "timestamp"
    if pt.is_date(t):
        return "date"
    return str(t)


def _castable(actual: pa.DataType, declared: pa.DataType) -> bool:
    """Whether ``actual`` may be converted to ``declared`` without changing meaning."""
    import pyarrow.types as pt

    if actual == declared or pt.is_null(actual):
        return True
    a, d = _family(actual), _family(declared)
    if a == d:
        if a == "timestamp":
            # naive vs aware is a meaning change, never silently cast
            return (actual.tz is None) == (declared.tz is None)
        return True
    return a == "integer" and d == "floating"


def _timezone_only(actual: pa.DataType, declared: pa.DataType) -> bool:
    """Whether two timestamp types differ in being naive or timezone-aware."""
    import pyarrow.types as pt

    return (
        pt.is_timestamp(actual)
        and pt.is_timestamp(declared)
        and ((actual.tz is None) != (declared.tz is None))
    )


@dataclass(frozen=True)
class FeatureField:
    """One column of a contract."""

    name: str
    type: str
    nullable: bool = True


@dataclass(frozen=True)
class FeatureContract:
    """The declared schema of a feature table.

    :param fields: the columns, in the order they are written.

    .. code-block:: python

        FeatureContract.from_dict(
            {"customer_id": ("int64", False), "income": "float64", "txn_count_7d": "int64"}
        )
    """

    fields: tuple[FeatureField, ...]

    def __post_init__(self) -> None:
        names = [f.name for f in self.fields]
        if not names:
            raise ArgumentError("A FeatureContract needs at least one field. Got none.")
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ArgumentError(
                f"FeatureContract has duplicate columns: {format_names(duplicates)}."
            )
        for f in self.fields:
            check_type_spec(f.type)

    @classmethod
    def from_dict(cls, spec: Mapping[str, str | tuple[str, bool]]) -> FeatureContract:
        """Build from ``{"name": "type"}`` or ``{"name": ("type", nullable)}``."""
        fields = []
        for name, value in spec.items():
            if isinstance(value, str):
                fields.append(FeatureField(name, value))
            else:
                type_, nullable = value
                fields.append(FeatureField(name, type_, bool(nullable)))
        return cls(tuple(fields))

    @classmethod
    def from_json(cls, text: str) -> FeatureContract:
        data = json.loads(text)
        return cls(tuple(FeatureField(**f) for f in data["fields"]))

    def to_json(self) -> str:
        return json.dumps({"fields": [f.__dict__ for f in self.fields]}, sort_keys=True)

    def select(self, names: list[str]) -> FeatureContract:
        """The contract of the columns ``names``, in that order (a model's inputs, say)."""
        fields = {f.name: f for f in self.fields}
        missing = [n for n in names if n not in fields]
        if missing:
            raise ArgumentError(
                f"Cannot select column(s) {format_names(missing)}: the contract has "
                f"{format_names(fields)}."
            )
        return FeatureContract(tuple(fields[n] for n in names))

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def to_arrow_schema(self) -> pa.Schema:
        import pyarrow as pa

        return pa.schema(
            [pa.field(f.name, parse_arrow_type(f.type), nullable=f.nullable) for f in self.fields]
        )

    def check_schema(self, schema: pa.Schema, *, what: str = "data") -> None:
        """Raise :class:`ContractError` naming every missing, unexpected or mistyped column."""
        declared = self.to_arrow_schema()
        actual_names = set(schema.names)
        missing = [n for n in declared.names if n not in actual_names]
        unexpected = [n for n in schema.names if n not in set(declared.names)]
        specs = {f.name: f.type for f in self.fields}
        mistyped = {
            f.name: (str(schema.field(f.name).type), specs[f.name])
            for f in declared
            if f.name in actual_names and not _castable(schema.field(f.name).type, f.type)
        }
        if not (missing or unexpected or mistyped):
            return
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} column(s): {format_names(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} column(s): {format_names(unexpected)}")
        if mistyped:
            shown = [f"{n} is {a}, declared {d}" for n, (a, d) in mistyped.items()]
            parts.append(f"mistyped {len(mistyped)} column(s): {format_names(shown)}")
        zoned = [
            n for n in mistyped if _timezone_only(schema.field(n).type, declared.field(n).type)
        ]
        hint = (
            f" Timestamps {format_names(zoned)} differ only in being timezone-naive or aware, "
            "which is never cast silently: convert them in the query (e.g. AT TIME ZONE 'UTC') "
            "or declare the matching timestamp type."
            if zoned
            else ""
        )
        raise ContractError(
            f"The {what} does not match its feature contract: {'; '.join(parts)}. "
            f"Fix the query or transform, or update the declared contract.{hint}",
            missing_columns=missing,
            unexpected_columns=unexpected,
            mistyped_columns=mistyped,
        )

    def conform(self, batch: pa.RecordBatch, *, what: str = "data") -> pa.RecordBatch:
        """``batch`` checked against the contract, cast to it and in its column order."""
        import pyarrow as pa

        self.check_schema(batch.schema, what=what)
        declared = self.to_arrow_schema()
        null_columns = [
            f.name for f in declared if not f.nullable and batch.column(f.name).null_count
        ]
        if null_columns:
            raise ContractError(
                f"The {what} has nulls in non-nullable column(s): {format_names(null_columns)}. "
                "Filter or fill them upstream, or declare the column nullable.",
                null_columns=null_columns,
            )
        columns = []
        for f in declared:
            try:
                columns.append(batch.column(f.name).cast(f.type, safe=True))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                actual = batch.schema.field(f.name).type
                raise ContractError(
                    f"The {what} has values in column {f.name!r} ({actual}) that do not fit "
                    f"its declared type {f.type}: {exc}. Fix or filter those values upstream, "
                    "or declare a wider type.",
                    mistyped_columns={f.name: (str(actual), str(f.type))},
                ) from exc
        return pa.RecordBatch.from_arrays(columns, schema=declared)


def key_columns(key: object, *, owner: str = "check_unique_keys") -> list[str]:
    """``key`` (a column name or a sequence of them) as a list, or :class:`ArgumentError`."""
    names = [key] if isinstance(key, str) else key
    if (
        not isinstance(names, list | tuple)
        or not names
        or not all(isinstance(n, str) and n for n in names)
        or len(set(names)) < len(names)
    ):
        raise ArgumentError(
            f"The 'unique_key' parameter of {owner} must be a column name or a non-empty list "
            f"of distinct column names. Got {key!r} instead."
        )
    return list(names)


def check_unique_keys(
    batches: Iterable[pa.RecordBatch], key: Sequence[str], *, what: str = "data"
) -> Iterator[pa.RecordBatch]:
    """``batches`` passed through unchanged, checking that ``key`` identifies every row.

    A null key fails at once; duplicates across all batches fail after the last batch,
    before the consumer (e.g. a publish) can commit. Only the key columns of each batch are
    kept until then, so memory grows with the row count at the key's width (8 bytes a row
    for an int64 key), not with the features.

    :raises DuplicateKeyError: naming the key, how many values repeat, and examples.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    names = key_columns(list(key))
    kept: list[pa.RecordBatch] = []
    for batch in batches:
        missing = [n for n in names if n not in batch.schema.names]
        if missing:
            raise ContractError(
                f"The {what} has no key column(s) {format_names(missing)}; its columns are "
                f"{format_names(batch.schema.names, limit=30)}. Fix the unique_key or the "
                "query.",
                missing_columns=missing,
            )
        nulls = [n for n in names if batch.column(n).null_count]
        if nulls:
            raise DuplicateKeyError(
                f"The {what} has null values in key column(s) {format_names(nulls)}: a null "
                "key identifies no entity. Filter those rows upstream or fix the join that "
                "produced them.",
                key_columns=names,
                duplicate_count=0,
                examples=[],
                null_columns=nulls,
            )
        kept.append(batch.select(names))
        yield batch
    if not kept:
        return
    counts = pa.Table.from_batches(kept).group_by(names).aggregate([(names[0], "count")])
    repeated = counts.filter(pc.greater(counts.column(f"{names[0]}_count"), 1))
    if repeated.num_rows:
        examples = [
            {**{n: row[n] for n in names}, "rows": row[f"{names[0]}_count"]}
            for row in repeated.slice(0, 5).to_pylist()
        ]
        shown = format_names(
            (", ".join(f"{n}={e[n]!r}" for n in names) + f" ({e['rows']} rows)" for e in examples),
            limit=5,
        )
        raise DuplicateKeyError(
            f"The {what} has {repeated.num_rows} duplicate value(s) of its key "
            f"({format_names(names)}): {shown}. Each key must identify one row: deduplicate "
            "upstream (e.g. GROUP BY the key or keep the latest row per key).",
            key_columns=names,
            duplicate_count=repeated.num_rows,
            examples=examples,
        )


def schema_to_json(schema: pa.Schema) -> list[dict[str, Any]]:
    """A JSON-friendly description of an Arrow schema (for manifests and XCom)."""
    return [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema]


def schema_from_json(fields: list[dict[str, Any]]) -> pa.Schema:
    """The Arrow schema :func:`schema_to_json` described (e.g. a manifest's ``schema``)."""
    import pyarrow as pa

    return pa.schema(
        [pa.field(f["name"], parse_arrow_type(f["type"]), nullable=f["nullable"]) for f in fields]
    )


def check_finite(data: pa.RecordBatch | pa.Table, names: Iterable[str], where: str) -> None:
    """Raise :class:`ContractError` when a floating column among ``names`` holds ±inf.

    Models are not defined on ±inf (NaN/null is the missing value they handle), so batch
    scoring refuses such a batch and serving such a partition.

    :param where: what ``data`` is, for the message ("Batch 3", "customer_features ds=…").
    """
    import pyarrow.compute as pc
    import pyarrow.types as pt

    infinite = {
        name: count
        for name in names
        if pt.is_floating(data.schema.field(name).type)
        and (count := pc.sum(pc.is_inf(data.column(name))).as_py() or 0)
    }
    if infinite:
        shown = (f"{name} ({count} rows)" for name, count in infinite.items())
        raise ContractError(
            f"{where} has infinite values in {len(infinite)} feature column(s): "
            f"{format_names(infinite)} — {format_names(shown)}. Models are not defined on "
            "±inf; fix the transform (e.g. a division by zero) or replace them with nulls "
            "upstream."
        )
