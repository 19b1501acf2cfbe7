
import pytest

from zoo_core.errors import RegistryError, UnsafeFileError
from zoo_core.registry import catalogue, get_entry, load_registry_file, parse_registry

ENTRY = """\
version: 1
models:
  - id: demo
    architecture: toy-mlp
    plugin: toy
    task: regression
    summary: a demo
    links: {paper: "https://example.org/paper"}
    license: MIT
    metrics:
      - {name: mse, value: 0.1, dataset: toy, protocol: held-out, source: "this test"}
    hub:
      repo_id: org/demo
      revision: "0123456789abcdef0123456789abcdef01234567"
      files:
        - {path: model.safetensors, sha256: "%s", size: 10}
""" % ("a" * 64)


def test_the_shipped_registry_validates():
    entries = load_registry_file("registry.yaml")
    assert {e.id for e in entries} >= {"gpt2-ml", "gpt2-ml-legacy", "nice-mnist"}
    for e in entries:
        assert e.hub is not None or e.weights["how"] in ("convert", "train")


def test_valid_entry_parses_into_a_pin():
    (entry,) = parse_registry(ENTRY, "r.yaml")
    assert entry.hub.repo_id == "org/demo" and entry.hub.files[0].size == 10
    assert entry.source == "r.yaml:3"


@pytest.mark.parametrize("old,new,field,line", [
    ('revision: "0123456789abcdef0123456789abcdef01234567"', 'revision: main', "models[0].hub.revision", 14),
    ("    license: MIT\n", "", "models[0]", 3),
    ("size: 10", "size: -1", "models[0].hub.files[0].size", 16),
    ("value: 0.1", "value: high", "models[0].metrics[0].value", 11),
    ("summary: a demo", "summary: a demo\n    colour: red", "models[0]", 3),
])
def test_schema_errors_name_file_line_and_field(old, new, field, line):
    with pytest.raises(RegistryError) as exc:
        parse_registry(ENTRY.replace(old, new), "r.yaml")
    text = str(exc.value)
    assert f"invalid registry field {field}" in text
    assert f"where: r.yaml:{line}" in text


def test_yaml_syntax_error_names_the_line():
    with pytest.raises(RegistryError, match=r"r\.yaml:4"):
        parse_registry("version: 1\nmodels:\n  - id: x\n   bad: y\n  - id: z\n", "r.yaml")


def test_unpublished_entry_must_say_how_to_get_weights():
    text = ENTRY.split("    hub:")[0] + "    hub: null\n"
    with pytest.raises(RegistryError, match="'weights' is a required property"):
        parse_registry(text, "r.yaml")
    ok = text + "    weights: {status: not-published, how: train}\n    recipe: toy-fit\n"
    assert parse_registry(ok, "r.yaml")[0].hub is None


@pytest.mark.parametrize("path", ["../escape.safetensors", "/etc/passwd", "a/../../b"])
def test_paths_escaping_the_repo_are_refused(path):
    with pytest.raises(UnsafeFileError, match="escapes the repository"):
        parse_registry(ENTRY.replace("path: model.safetensors", f"path: {path!r}"), "r.yaml")


def test_pickle_files_are_refused():
    with pytest.raises(UnsafeFileError, match="pickle"):
        parse_registry(ENTRY.replace("model.safetensors", "pytorch_model.bin"), "r.yaml")


def test_user_registry_adds_entries_and_collisions_name_both(tmp_path, monkeypatch, zoo_plugins):
    user = tmp_path / "mine.yaml"
    user.write_text(ENTRY)
    monkeypatch.setenv("ZOO_REGISTRY", str(user))
    catalogue.cache_clear()
    try:
        assert get_entry("demo").source == f"{user}:3"
        user.write_text(ENTRY.replace("id: demo", "id: nice-mnist"))
        catalogue.cache_clear()
        twice = r"'nice-mnist' is defined twice: at .*registry.yaml:\d+ and at .*mine.yaml:3"
        with pytest.raises(RegistryError, match=twice):
            catalogue()
    finally:
        catalogue.cache_clear()


def test_plugin_entries_through_the_hook(tmp_path, zoo_plugins):
    from zoo_core import hookimpl

    extra = tmp_path / "plugin.yaml"
    extra.write_text(ENTRY.replace("id: demo", "id: from-file"))

    class P:
        @hookimpl
        def register_registry_entries(self, register):
            register(str(extra))
            register({"id": "from-dict", "architecture": "toy-mlp", "plugin": "toy", "task": "t", "summary": "s",
                      "links": {"a": "https://x.org"}, "license": "MIT", "metrics": [], "hub": None,
                      "weights": {"status": "not-published", "how": "train"}, "recipe": "toy-fit"})

    zoo_plugins.pm.register(P(), name="p")
    catalogue.cache_clear()
    try:
        assert {"from-file", "from-dict"} <= set(catalogue())
    finally:
        catalogue.cache_clear()


def test_unknown_model_suggests():
    catalogue.cache_clear()
    with pytest.raises(KeyError, match="did you mean 'nice-mnist'"):
        get_entry("nice-mnst")
