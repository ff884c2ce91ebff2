from __future__ import annotations

import math
import re

import pytest

from airflow_mlops.checks import check_bool, check_choice, check_int, check_names, check_number
from airflow_mlops.exceptions import ArgumentError, is_retryable


@pytest.mark.parametrize(
    ("value", "min_value"),
    [
        pytest.param(1, 1, id="min"),
        pytest.param(0, 0, id="zero-allowed"),
        pytest.param(9, 2, id="big"),
    ],
)
def test_check_int_returns_accepted_values(value, min_value):
    assert check_int(value, "workers", "Op", min_value=min_value) == value


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        pytest.param(0, "0", id="below"),
        pytest.param(True, "True", id="bool"),
        pytest.param(2.5, "2.5", id="float"),
        pytest.param("4", "'4'", id="string"),
        pytest.param(None, "None", id="none"),
    ],
)
def test_check_int_refuses_in_sklearn_form(value, shown):
    with pytest.raises(
        ArgumentError,
        match=re.escape(f"The 'workers' parameter of Op must be an int >= 1. Got {shown} instead."),
    ) as caught:
        check_int(value, "workers", "Op")
    assert isinstance(caught.value, ValueError)
    assert not is_retryable(caught.value)


@pytest.mark.parametrize(
    ("value", "kwargs", "expected"),
    [
        pytest.param(0.5, {"low": 0, "high": 1}, "a float in [0, 1]", id="inside"),
        pytest.param(1, {"low": 0, "high": 1, "closed": "right"}, "a float in (0, 1]", id="edge"),
        pytest.param(7, {"low": 0}, "a number >= 0", id="no-upper"),
    ],
)
def test_check_number_accepts_and_returns_floats(value, kwargs, expected):
    assert check_number(value, "t", "Op", **kwargs) == float(value)
    with pytest.raises(ArgumentError, match=re.escape(f"must be {expected}. Got 'x' instead.")):
        check_number("x", "t", "Op", **kwargs)


@pytest.mark.parametrize(
    ("value", "kwargs"),
    [
        pytest.param(0, {"low": 0, "high": 1, "closed": "right"}, id="open-left"),
        pytest.param(1, {"low": 0, "high": 1, "closed": "left"}, id="open-right"),
        pytest.param(1.5, {"low": 0, "high": 1}, id="above"),
        pytest.param(-1, {"low": 0}, id="below"),
        pytest.param(math.nan, {"low": 0, "high": 1}, id="nan"),
        pytest.param(False, {"low": 0, "high": 1}, id="bool"),
    ],
)
def test_check_number_refuses_out_of_bounds(value, kwargs):
    with pytest.raises(ArgumentError, match=re.escape("The 't' parameter of Op must be")):
        check_number(value, "t", "Op", **kwargs)


def test_check_number_takes_custom_wording():
    with pytest.raises(
        ArgumentError,
        match=re.escape("must be a number of seconds >= 0. Got -1 instead."),
    ):
        check_number(-1, "grace", "Op", low=0, expected="a number of seconds >= 0")


def test_check_bool_refuses_truthy_strings():
    assert check_bool(False, "allow_empty", "Op") is False
    with pytest.raises(
        ArgumentError,
        match=re.escape(
            "The 'allow_empty' parameter of Op must be True or False. Got 'no' instead."
        ),
    ):
        check_bool("no", "allow_empty", "Op")


def test_check_choice_lists_the_choices():
    assert check_choice("auto", "runtime", "Op", ("auto", "sklearn")) == "auto"
    with pytest.raises(
        ArgumentError,
        match=re.escape(
            "The 'runtime' parameter of Op must be one of 'auto', 'sklearn'. Got 'gpu' instead."
        ),
    ):
        check_choice("gpu", "runtime", "Op", ("auto", "sklearn"))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(
            "a",
            "must be a list of column names. Got the string 'a' instead: write ['a'].",
            id="string",
        ),
        pytest.param(
            ["a", ""], "must be a list of column names. Got ['a', ''] instead.", id="empty-name"
        ),
        pytest.param([1], "must be a list of column names. Got [1] instead.", id="not-str"),
        pytest.param({"a"}, "must be a list of column names. Got {'a'} instead.", id="set"),
    ],
)
def test_check_names_refuses(value, message):
    with pytest.raises(ArgumentError, match=re.escape(f"The 'columns' parameter of Op {message}")):
        check_names(value, "columns", "Op")


def test_check_names_returns_a_list_and_can_require_one_name():
    assert check_names(("a", "b"), "columns", "Op") == ["a", "b"]
    assert check_names([], "columns", "Op") == []
    with pytest.raises(ArgumentError, match=re.escape("must be a non-empty list of aliases.")):
        check_names([], "aliases", "Op", what="aliases", allow_empty=False)
