#!/bin/sh
# Every zoo-nce measurement in one locked run (about 6 minutes on the 2-core dev box).
set -e
cd "$(dirname "$0")/../../.."
date -u; uptime
OMP_NUM_THREADS=2 python plugins/zoo-nce/benchmarks/nce_step_time.py
OMP_NUM_THREADS=2 python plugins/zoo-nce/benchmarks/word2vec_vs_gensim.py
OMP_NUM_THREADS=1 python plugins/zoo-nce/benchmarks/zhidao_loader.py
uptime
