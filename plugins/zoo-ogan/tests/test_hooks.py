"""The catalogue entries zoo-ogan registers tell the user commands that fit the entry."""

from __future__ import annotations


def test_each_entry_suggests_reconstructing_its_own_dataset():
    from zoo_core import plugins
    from zoo_ogan import hooks

    entries = []
    hooks.register_registry_entries(entries.append)
    assert [e["id"] for e in entries] == list(hooks.ENTRIES)
    for entry in entries:
        recipe = plugins.get_recipe_spec(entry["id"])
        assert f"--dataset {recipe.dataset}`" in entry["weights"]["instructions"], entry["id"]
