"""Answers per second: DGCNN (2019 sizes) against a BERT-base reader, same questions and passages, one run.

The BERT reader is transformers' ``BertForQuestionAnswering`` at bert-base-chinese's sizes (vocab
21,128, 12 layers, hidden 768, 12 heads, FFN 3,072), random weights (only the speed matters), in eval
mode: each (question, passage) pair is ``[CLS] question [SEP] passage [SEP]`` with one token per
character (as bert-base-chinese tokenises Chinese), and the answer is the best start <= end span of
at most 12 tokens of the passage with the most confident span. DGCNN runs ``model.answer`` (tokenising,
forward, the released decoding and vote). Batch 1: one question (all its passages) per call; batch
32: 32 questions per call. Also: DGCNN training throughput (characters of question + passage per
second, forward + backward + RAdam, batch 128 of the cloze proxy's training examples).

    pip install transformers   # for this benchmark only
    flock /tmp/zoo-cpu.lock env OMP_NUM_THREADS=2 python plugins/zoo-dgcnn/benchmarks/speed.py \\
        --model /tmp/dgcnn-proxy/model
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def questions(n: int):
    from zoo_dgcnn.cloze import cloze_records

    recs = cloze_records("test")
    return [(recs[i]["question"], [p["passage"] for p in recs[i]["passages"]]) for i in range(n)]


def dgcnn_model(folder: str | None = None):
    """The trained reader in ``folder``, else a random one with the proxy's character vocabulary."""
    if folder:
        from zoo_core.model import load_folder

        return load_folder(folder).eval()
    from zoo_dgcnn.cloze import cloze_records
    from zoo_dgcnn.model import DGCNN, DGCNNConfig
    from zoo_dgcnn.text import build_vocab

    texts = (t for r in cloze_records("train") for t in [r["question"]] + [p["passage"] for p in r["passages"]])
    torch.manual_seed(0)
    return DGCNN(DGCNNConfig(vocab=build_vocab(texts, 16))).eval()


def bert_reader():
    from transformers import BertConfig, BertForQuestionAnswering

    torch.manual_seed(0)
    config = BertConfig(vocab_size=21128, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                        intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2)
    return BertForQuestionAnswering(config).eval()


@torch.no_grad()
def bert_answer(model, batch):
    """Answers of a batch of (question, passages) with the BERT reader."""
    ids, types, owners = [], [], []
    for qi, (q, passages) in enumerate(batch):
        qids = [100 + (ord(c) % 21000) for c in q][:64]
        for p in passages:
            pids = [100 + (ord(c) % 21000) for c in p][: 509 - len(qids)]
            ids.append([101] + qids + [102] + pids + [102])
            types.append([0] * (len(qids) + 2) + [1] * (len(pids) + 1))
            owners.append((qi, p, len(qids) + 2, len(pids)))
    width = max(len(x) for x in ids)
    input_ids = torch.tensor([x + [0] * (width - len(x)) for x in ids])
    token_type = torch.tensor([x + [0] * (width - len(x)) for x in types])
    mask = (input_ids > 0).long()
    out = model(input_ids=input_ids, token_type_ids=token_type, attention_mask=mask)
    best = {}
    for row, (qi, p, offset, n) in enumerate(owners):
        s = out.start_logits[row, offset:offset + n]
        e = out.end_logits[row, offset:offset + n]
        scores = s[:, None] + e[None, :]
        valid = torch.ones(n, n, dtype=torch.bool).triu().tril(11)
        scores = scores.masked_fill(~valid, -1e9)
        k = int(scores.argmax())
        i, j = divmod(k, n)
        value = float(scores.flatten()[k])
        if qi not in best or value > best[qi][0]:
            best[qi] = (value, p[i:j + 1])
    return [best[qi][1] for qi in range(len(batch))]


def timed(fn, batches, repeats: int = 1):
    fn(batches[0])  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        for b in batches:
            fn(b)
    return time.perf_counter() - start


def training_throughput(model, steps: int = 5, batch: int = 128):
    from zoo_dgcnn.cloze import cloze_records
    from zoo_dgcnn.data import TrainExamples
    from zoo_dgcnn.train import DGCNNStep
    from zoo_core import TrainConfig

    data = TrainExamples([(cloze_records("train"), 1)], seed=0)
    step = DGCNNStep(model, TrainConfig(extra={"min_count": 16}))
    opt = step.configure_optimizers()["radam"]
    model.train()
    chars, elapsed = 0, 0.0
    for s in range(steps + 1):
        items = [data[(s * batch + i) % len(data)] for i in range(batch)]
        qs, ps, ans = (list(x) for x in zip(*items))
        t = time.perf_counter()
        opt.zero_grad()
        step.training_step(model, (qs, ps, ans))["loss"].backward()
        opt.step()
        if s:  # the first step warms up
            elapsed += time.perf_counter() - t
            chars += sum(len(q) + len(p) for q, p in zip(qs, ps))
    model.eval()
    return chars / elapsed, elapsed / steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", help="a trained DGCNN folder (decoding is cheaper once few spans pass 0.1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    qs = questions(args.questions)
    dg, bert = dgcnn_model(args.model), bert_reader()
    n_pass = sum(len(p) for _, p in qs)
    chars = sum(len(q) + len(p) for q, ps in qs for p in ps)
    print(f"{len(qs)} questions, {n_pass} passages, {chars} characters of question+passage pairs; "
          f"threads {torch.get_num_threads()}")
    results = {}
    for bs in (1, 32):
        batches = [qs[i:i + bs] for i in range(0, len(qs), bs)]
        n_bert = min(len(batches), max(1, 16 // bs))  # BERT is slow: time a part, per question
        t_dg = timed(lambda b: dg.answer([q for q, _ in b], [p for _, p in b], batch_size=4096), batches)
        t_bert = timed(lambda b: bert_answer(bert, b), batches[:n_bert])
        dg_rate = len(qs) / t_dg
        bert_rate = sum(len(b) for b in batches[:n_bert]) / t_bert
        results[bs] = {"dgcnn_answers_per_s": dg_rate, "bert_answers_per_s": bert_rate,
                       "dgcnn_ms_per_question": 1000 / dg_rate, "bert_ms_per_question": 1000 / bert_rate,
                       "speedup": dg_rate / bert_rate}
        print(f"batch {bs:2d}: DGCNN {dg_rate:8.1f} answers/s ({1000 / dg_rate:6.1f} ms/question)   "
              f"BERT-base {bert_rate:6.2f} answers/s ({1000 / bert_rate:7.1f} ms/question)   "
              f"DGCNN/BERT {dg_rate / bert_rate:5.1f}x")
    tok_s, s_step = training_throughput(dg)
    results["train_chars_per_s"] = tok_s
    print(f"DGCNN training: {tok_s:,.0f} characters/s (question + passage), {s_step:.2f} s per batch of 128")
    print(f"parameters: DGCNN {sum(p.numel() for p in dg.parameters()):,}, "
          f"BERT-base {sum(p.numel() for p in bert.parameters()):,}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
