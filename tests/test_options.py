"""KEY=VALUE options (zoo_core.parse_key_values), as every command reads them."""

import pytest

from zoo_core import ZooError, parse_key_values


def test_values_are_json_where_they_parse_else_strings():
    assert parse_key_values(["size=32", "crop=none", "crop_size=null", 'x={"a": [1]}', "name=a=b", "empty="]) == {
        "size": 32, "crop": "none", "crop_size": None, "x": {"a": [1]}, "name": "a=b", "empty": ""}


@pytest.mark.parametrize("pair, expected", [("size", "is not KEY=VALUE"), ("=32", "is not KEY=VALUE"),
                                            ("size=" + "[" * 100_000, "nested too deeply")])
def test_bad_pairs_are_zoo_errors_naming_the_option(pair, expected):
    with pytest.raises(ZooError, match=expected) as info:
        parse_key_values([pair], "--model-set")
    assert info.value.where.startswith("--model-set")


def test_zoo_train_with_a_deeply_nested_set_value_is_a_clear_error(zoo_plugins):
    from click.testing import CliRunner

    from zoo_core.cli import cli

    r = CliRunner().invoke(cli, ["train", "toy-fit", "--set", "epochs=" + "[" * 100_000])
    assert r.exit_code == 1 and "nested too deeply" in r.output and "Traceback" not in r.output
