import inspect
import re
from pathlib import Path

from zoo_core import hookspecs

ROOT = Path(__file__).parent.parent


def _hooks():
    return [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("register_")]


def test_every_hook_is_documented_in_contributing():
    text = (ROOT / "CONTRIBUTING.md").read_text()
    sections = dict(re.findall(r"^### (\w+)\n\n(.+?)(?=^##|\Z)", text, flags=re.S | re.M))
    missing = [name for name in _hooks() if len(sections.get(name, "").split()) < 10]
    assert not missing, f"hooks without a section in CONTRIBUTING.md's hook reference: {missing}"


def test_every_hook_has_a_docstring():
    for name in _hooks():
        assert (getattr(hookspecs, name).__doc__ or "").strip(), name


def test_readme_opens_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.+?)```", text, flags=re.S)
    assert len(blocks) >= 2
    assert "pip install" in blocks[0] and "zoo " in blocks[0]
    assert "pytest" in blocks[1]
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = blocks[1].strip().splitlines()[-1]
    # CI runs the same line in a virtualenv of its own, never a developer's .venv
    in_ci = test_command.replace("venv .venv", 'venv "$VENV"').replace(". .venv/bin/activate", '. "$VENV/bin/activate"')
    assert in_ci != test_command and in_ci in ci, "`.ci/run` must call the README's test command"
    assert 'rm -rf "$VENV"' in ci and "rm -rf .venv" not in ci
    for command in (blocks[0].strip(), test_command):  # one short line, however many plugins
        assert "\n" not in command and "plugins/" not in command
