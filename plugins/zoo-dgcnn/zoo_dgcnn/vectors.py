"""The word vectors a DGCNN reads beside its characters: a word2vec file, or an installed word2vec model."""

from __future__ import annotations

from pathlib import Path

import torch

from zoo_core import ZooError


def word_vectors(ref: str) -> tuple[list[str], torch.Tensor]:
    """(words, vectors (n, dim)) named by ``ref``: a word2vec file (text or binary), or a word2vec model's
    folder or catalogue id (``sgns-peoples-daily`` once ``zoo train sgns-peoples-daily`` has installed it)."""
    import zoo_text

    path = Path(ref).expanduser()
    if path.is_file():
        return zoo_text.read_word2vec(path)
    from zoo_core import has_local_model, load_model

    if not (path.is_dir() or has_local_model(ref)):
        raise ZooError(f"word_vectors {ref!r} is neither a word2vec file nor an installed word2vec model",
                       where=f"--set word_vectors={ref}",
                       hint="give a word2vec file, or run `zoo train sgns-peoples-daily` and pass "
                            "--set word_vectors=sgns-peoples-daily")
    model = load_model(ref)
    words = getattr(model.config, "words", None)
    if getattr(model, "architecture", None) != "word2vec" or not words:
        raise ZooError(f"{ref} is a {getattr(model, 'architecture', '?')} model, not word vectors",
                       where=f"--set word_vectors={ref}", hint="name a word2vec model or file")
    with torch.no_grad():
        vectors = model(torch.arange(len(words))).float()  # a word2vec model maps word ids to their vectors
    return list(words), vectors
