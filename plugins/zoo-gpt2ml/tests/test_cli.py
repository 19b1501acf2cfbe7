"""``zoo generate gpt2-ml`` on a tiny random model folder, and the torch-free hook modules."""

from __future__ import annotations

import shutil
import subprocess
import sys

import click
import pytest
import torch
from click.testing import CliRunner

from zoo_gpt2ml import hooks
from zoo_gpt2ml.model import GPT2ML
from zoo_gpt2ml.vocab import resolve_vocab


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    torch.manual_seed(0)
    model = GPT2ML.from_config(dict(hooks.TINY_CONFIG))
    with torch.no_grad():
        model.wte.weight.mul_(8)
    folder = model.save_pretrained(tmp_path_factory.mktemp("models") / "tiny-gpt2ml")
    shutil.copy(resolve_vocab("clue"), folder / "vocab.txt")
    return folder


@pytest.fixture
def zoo():
    """A bare click group with this plugin's commands where the core puts them (a ZooError is not caught)."""
    from zoo_gpt2ml.cli import convert_command, generate_command

    @click.group()
    def cli():
        pass

    for verb, command in (("generate", generate_command), ("convert", convert_command)):
        cli.add_command(click.Group(verb, commands={"gpt2-ml": command}))
    return cli


def run(zoo, *args):
    result = CliRunner().invoke(zoo, list(args), catch_exceptions=False)
    return result


def test_generate_streams_a_reproducible_continuation(zoo, model_folder):
    args = ["generate", "gpt2-ml", "今天天气", "--model", str(model_folder), "--max-new-tokens", "12", "--seed", "7"]
    first = run(zoo, *args)
    assert first.exit_code == 0, first.output
    assert first.output.startswith("今天天气")
    assert len(first.output.strip()) > len("今天天气")
    assert run(zoo, *args).output == first.output
    other = run(zoo, *args[:-1], "8")
    assert other.output != first.output


def test_generate_output_matches_the_model(zoo, model_folder):
    from zoo_core import load_model
    from zoo_gpt2ml.tokenizer import GPT2MLTokenizer

    result = run(zoo, "generate", "gpt2-ml", "你好", "--model", str(model_folder), "--max-new-tokens", "10",
                 "--seed", "3", "--dtype", "fp32")
    tok = GPT2MLTokenizer.from_folder(model_folder)
    model = load_model(model_folder)
    g = torch.Generator().manual_seed(3)
    ids = model.generate(tok.encode("你好"), 10, generator=g)
    assert result.output == "你好" + tok.decode(ids[0, 2:]) + "\n"


def test_generate_num_samples_and_bf16(zoo, model_folder):
    threads = torch.get_num_threads()
    try:
        result = run(zoo, "generate", "gpt2-ml", "中文", "--model", str(model_folder), "--max-new-tokens", "5",
                     "--num-samples", "2", "--dtype", "bf16", "--seed", "1", "--decode", "clean", "--threads", "1")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    assert "--- sample 1 of 2 ---" in result.output and "--- sample 2 of 2 ---" in result.output


def test_generate_without_vocab_says_what_to_do(zoo, model_folder, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(model_folder, bare)
    (bare / "vocab.txt").unlink()
    from zoo_core import ZooError

    with pytest.raises(ZooError, match="vocab.txt"):
        run(zoo, "generate", "gpt2-ml", "你好", "--model", str(bare))
    ok = run(zoo, "generate", "gpt2-ml", "你好", "--model", str(bare), "--vocab", "clue", "--max-new-tokens", "3")
    assert ok.exit_code == 0, ok.output


def test_generate_rejects_a_too_long_request(zoo, model_folder):
    from zoo_core import ZooError

    with pytest.raises(ZooError, match="positions"):
        run(zoo, "generate", "gpt2-ml", "你好", "--model", str(model_folder), "--max-new-tokens", "100")


def test_registered_in_the_real_zoo_cli(model_folder):
    from zoo_core.cli import cli

    result = CliRunner().invoke(cli, ["generate", "gpt2-ml", "--help"])
    assert result.exit_code == 0, result.output
    assert "--top-p" in result.output and "--num-samples" in result.output
    result = CliRunner().invoke(cli, ["generate", "gpt2-ml", "你好", "--model", str(model_folder),
                                      "--max-new-tokens", "4", "--seed", "0"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("你好")


def test_hook_and_cli_modules_do_not_import_torch():
    code = ("import sys, zoo_gpt2ml, zoo_gpt2ml.hooks, zoo_gpt2ml.cli, zoo_gpt2ml.vocab; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("args, what, hint", [
    (["你好", "--vocab", "bert"], "the vocabulary has 21128 tokens but the model only 8021 embedding rows",
     "--vocab clue"),
    (["", "--max-new-tokens", "3"], "the prompt encodes to no tokens", "give some text"),
])
def test_generate_errors_are_zoo_errors_with_what_to_do_next(model_folder, args, what, hint):
    from zoo_core import ZooError
    from zoo_core.cli import cli

    result = CliRunner().invoke(cli, ["generate", "gpt2-ml", args[0], "--model", str(model_folder), *args[1:]])
    assert result.exit_code == 1, result.output
    assert f"Error: {what}" in result.output and "where:" in result.output and hint in result.output
    assert "Traceback" not in result.output
    with pytest.raises(ZooError):  # the command itself raises ZooError, never click.ClickException
        CliRunner().invoke(cli.get_command(click.Context(cli), "generate").commands["gpt2-ml"],
                           [args[0], "--model", str(model_folder), *args[1:]], catch_exceptions=False)
