from __future__ import annotations

import pytest

from liveml.errors import Invalid
from liveml.registry.names import ModelRef, parse_ref, validate_alias, validate_name


@pytest.mark.parametrize("name", ["churn", "fraud-v2", "a.b_c", "X1", "9lives"])
def test_good_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a/b",
        "..",
        "a..b",
        "../etc",
        "with space",
        ".hidden",
        "-dash",
        "chu\u0440n",
        "caf\u00e9",
        "a:b",
        "a@b",
        "x" * 129,
        "tab\there",
        "nul\x00",
    ],
)
def test_bad_names_say_what_is_allowed(name: str) -> None:
    with pytest.raises(Invalid, match="ASCII"):
        validate_name(name)


@pytest.mark.parametrize("alias", ["Production", "1st", "", "a b", "latest", "x/y"])
def test_bad_aliases(alias: str) -> None:
    with pytest.raises(Invalid):
        validate_alias(alias)


def test_refs() -> None:
    assert parse_ref("churn") == ModelRef("churn")
    assert parse_ref("churn:3") == ModelRef("churn", version=3)
    assert parse_ref("churn@staging") == ModelRef("churn", alias="staging")
    assert parse_ref("churn:latest") == ModelRef("churn", alias="latest")
    assert str(parse_ref("churn@staging")) == "churn@staging"
    for bad in ("churn:0", "churn:x", "churn@", "", ":3"):
        with pytest.raises(Invalid):
            parse_ref(bad)
