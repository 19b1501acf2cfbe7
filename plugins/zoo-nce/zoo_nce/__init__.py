"""zoo-nce: noise-contrastive estimation, negative sampling and what they train (word2vec, question->tag)."""
