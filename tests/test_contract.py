from __future__ import annotations

import re

import pyarrow as pa
import pytest

from airflow_mlops.contract import FeatureContract, parse_arrow_type
from airflow_mlops.exceptions import ArgumentError, ContractError

CONTRACT = FeatureContract.from_dict(
    {"customer_id": ("int64", False), "income": "float64", "region": "string"}
)


def _batch(**columns):
    return pa.RecordBatch.from_pydict(columns)


def test_conform_casts_safe_widenings_and_orders_columns():
    batch = _batch(
        region=pa.array(["n"]),
        income=pa.array([1], pa.int32()),
        customer_id=pa.array([7], pa.int32()),
    )
    out = CONTRACT.conform(batch)
    assert out.schema == CONTRACT.to_arrow_schema()
    assert out.to_pylist() == [{"customer_id": 7, "income": 1.0, "region": "n"}]


def test_mismatch_names_every_offending_column():
    batch = _batch(customer_id=pa.array(["x"]), extra=pa.array([1]), region=pa.array(["n"]))
    with pytest.raises(ContractError) as info:
        CONTRACT.conform(batch, what="table 'customer_features'")
    err = info.value
    assert err.missing_columns == ["income"]
    assert err.unexpected_columns == ["extra"]
    assert err.mistyped_columns == {"customer_id": ("string", "int64")}
    assert "table 'customer_features' does not match" in str(err)


def test_nulls_in_non_nullable_column_are_refused():
    batch = _batch(
        customer_id=pa.array([None, 1], pa.int64()),
        income=pa.array([1.0, 2.0]),
        region=pa.array(["a", None]),
    )
    with pytest.raises(ContractError, match=re.escape("non-nullable column(s): customer_id")):
        CONTRACT.conform(batch)


def test_naive_and_aware_timestamps_do_not_mix():
    contract = FeatureContract.from_dict({"ts": "timestamp[us, tz=UTC]"})
    with pytest.raises(ContractError, match="mistyped"):
        contract.check_schema(pa.schema([("ts", pa.timestamp("us"))]))


def test_json_round_trip():
    assert FeatureContract.from_json(CONTRACT.to_json()) == CONTRACT


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param({}, "at least one field", id="empty"),
        pytest.param({"a": "decimal"}, "Unknown Arrow type 'decimal'", id="unknown-type"),
    ],
)
def test_bad_contracts_are_refused(spec, message):
    with pytest.raises(ArgumentError, match=re.escape(message)):
        FeatureContract.from_dict(spec)


def test_long_lists_are_capped_in_messages():
    contract = FeatureContract.from_dict({f"c{i}": "int64" for i in range(15)})
    with pytest.raises(ContractError, match=re.escape("and 5 more")):
        contract.check_schema(pa.schema([("other", pa.int64())]))


def test_parse_arrow_type_reads_what_arrow_prints():
    for t in (pa.int64(), pa.float64(), pa.string(), pa.date32(), pa.timestamp("us", tz="UTC")):
        assert parse_arrow_type(str(t)) == t


def test_select_keeps_the_chosen_columns_in_the_given_order():
    assert CONTRACT.select(["region", "customer_id"]).names == ["region", "customer_id"]
    assert CONTRACT.select(["customer_id"]).fields[0].nullable is False
    with pytest.raises(ArgumentError, match=re.escape("Cannot select column(s) nope")):
        CONTRACT.select(["nope"])
