"""Shared fixtures: only this plugin loaded, in a private ZOO_HOME; tiny corpora written on the fly."""

from __future__ import annotations

import random

import pytest

from zoo_core.testing import only_plugins
from zoo_core.testing.pytest_plugin import *  # noqa: F403  (the zoo's test kit: fixtures, private caches)

zoo = only_plugins("nce")

TOPICS = 6


def planted_corpus(path, sentences: int = 1500, seed: int = 0):
    """A text corpus where word pN_a and pN_b always appear with topic N's context words, never elsewhere.

    Each sentence is about one topic: one of its two planted words, three of
    its five context words and two filler words, shuffled. So pN_a and pN_b
    share every context and nothing else does: SGNS must make them each
    other's nearest neighbour.
    """
    rng = random.Random(seed)
    fillers = [f"f{i}" for i in range(30)]
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(sentences):
            t = rng.randrange(TOPICS)
            words = [rng.choice([f"p{t}_a", f"p{t}_b"])]
            words += rng.sample([f"c{t}_{j}" for j in range(5)], 3) + rng.sample(fillers, 2)
            rng.shuffle(words)
            f.write(" ".join(words) + "\n")
    return path


@pytest.fixture
def planted(tmp_path):
    return planted_corpus(tmp_path / "planted.txt")
