"""A Delta feature table's schema across days: what a publish may change, and how.

The table schema is a property of the table, not of a day: every reader (this package,
pyarrow's dataset, Polars, DuckDB) reads all days with it. A publish whose file schema differs
from the table's is reconciled column by column (:func:`evolve`):

- a column the table does not have is **added** (nullable: earlier days read it as null);
- a column the publish lacks stays in the table (this day reads it as null) if it is nullable,
  else the publish is refused;
- a column whose type changed: a **safe widening** of the table's type (a wider integer of the
  same signedness, or any integer into a wider signed one; ``float16``/``float32`` →
  ``float64``; ``string`` → ``large_string``; a dictionary of strings → ``string``) widens the
  table's column (earlier days are read widened); a publish narrower than the table is cast
  up to the table's type when the cast is lossless; anything else is refused, naming the
  column and both types.

The same rules as Delta Lake's own schema merge and type widening
(https://docs.delta.io/latest/delta-type-widening.html), applied before any file is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_mlops.exceptions import ContractError

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class Evolution:
    """How a publish's files relate to the table.

    :param table_schema: the table's schema after the publish (partition column excluded).
    :param file_schema: the schema the publish's files are written with (its own columns,
        each of the table's type when the publish was narrower).
    :param added: columns new to the table.
    :param widened: ``column → (old type, new type)`` for columns the table widened.
    """

    table_schema: pa.Schema
    file_schema: pa.Schema
    added: tuple[str, ...] = ()
    widened: tuple[tuple[str, str, str], ...] = ()

    @property
    def changed(self) -> bool:
        """Whether the table's schema changes."""
        return bool(self.added or self.widened)


def evolve(table: str, current: pa.Schema | None, incoming: pa.Schema) -> Evolution:
    """Reconcile a publish's ``incoming`` file schema with the table's ``current`` one (None
    for a new table), by the rules of the module docstring.

    :raises ContractError: a type change that is not a safe widening either way, or a
        non-nullable table column the publish lacks; the message names the column, both
        types and what to do.
    """
    import pyarrow as pa

    if current is None:
        return Evolution(incoming, incoming)
    fields: list[pa.Field] = []
    file_fields: list[pa.Field] = []
    widened: list[tuple[str, str, str]] = []
    by_name = {field.name: field for field in incoming}
    for old in current:
        new = by_name.get(old.name)
        if new is None:
            _check_may_be_missing(table, old)
            fields.append(old)
            continue
        merged = _merged_field(table, old, new)
        if merged.type != old.type:
            widened.append((old.name, str(old.type), str(merged.type)))
        fields.append(merged)
        file_fields.append(new.with_type(merged.type))
    added = [field for field in incoming if field.name not in current.names]
    fields += [field.with_nullable(True) for field in added]
    file_fields += added
    return Evolution(
        pa.schema(fields, metadata=current.metadata),
        pa.schema(file_fields, metadata=incoming.metadata),
        tuple(field.name for field in added),
        tuple(widened),
    )


def widens(narrow: pa.DataType, wide: pa.DataType) -> bool:
    """Whether every value of type ``narrow`` is exactly a value of type ``wide`` (and the
    two differ): the type changes a table may make without rewriting its files."""
    import pyarrow.types as pt

    if narrow == wide:
        return False
    if pt.is_integer(narrow) and pt.is_integer(wide):
        if pt.is_signed_integer(narrow) == pt.is_signed_integer(wide):
            return bool(wide.bit_width > narrow.bit_width)
        return pt.is_signed_integer(wide) and wide.bit_width > narrow.bit_width
    if pt.is_floating(narrow) and pt.is_floating(wide):
        return bool(wide.bit_width > narrow.bit_width)
    if pt.is_string(narrow) and pt.is_large_string(wide):
        return True
    return bool(
        pt.is_dictionary(narrow)
        and (pt.is_string(narrow.value_type) or pt.is_large_string(narrow.value_type))
        and (pt.is_string(wide) or pt.is_large_string(wide))
    )


def _merged_field(table: str, old: pa.Field, new: pa.Field) -> pa.Field:
    if new.type == old.type or widens(new.type, old.type):
        merged = old  # the publish is cast up to the table's type
    elif widens(old.type, new.type):
        merged = old.with_type(new.type)
    else:
        raise ContractError(
            f"Column {new.name!r} of table {table!r} is {old.type} in the table and "
            f"{new.type} in this publish: no reader can read both as one column. Cast it "
            f"back to {old.type} (or a type that widens it), or publish it under a new "
            "column name.",
            mistyped_columns={new.name: (str(old.type), str(new.type))},
        )
    return merged.with_nullable(old.nullable or new.nullable)


def _check_may_be_missing(table: str, field: pa.Field) -> None:
    if not field.nullable:
        raise ContractError(
            f"Column {field.name!r} ({field.type}, non-nullable) of table {table!r} is "
            "missing from this publish: earlier days have it and this day would read it as "
            "null. Publish the column, or publish it as nullable first.",
            missing_columns=[field.name],
        )
