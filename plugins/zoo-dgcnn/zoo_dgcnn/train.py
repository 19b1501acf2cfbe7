"""DGCNN's training step for the core's Trainer: the 2019 release's loss, optimiser, schedule and score.

- Batches are strings, (questions, passages, answers); the step encodes them with the model's own
  vocabulary and labels every occurrence of the answer (:func:`zoo_dgcnn.text.answer_labels`).
- Settings (:class:`DGCNNSettings`): the release's values; a recipe holds only what it changes.
- Vocabulary: the dataset gives the model the training data's characters seen ``min_count`` times
  (16 in the release) and, when ``word_vectors`` names a word2vec file (text or binary) or an
  installed word2vec model (``sgns-peoples-daily``), those vectors (:class:`zoo_dgcnn.data.QADataset`);
  all of it is saved in the model folder.
- RAdam (lr 1e-3), the core's EMA (0.9999) of the weights for evaluation, batch 128.
- The released schedule, after each validation (one per epoch), with the release's test on Keras's
  0-based epoch number: once it is over ``drop_min_epoch`` (15), i.e. after 17 completed epochs, a
  score under ``drop_score`` (0.5) or ``patience`` (5) validations without a new best drop the rate
  (once); when ``drop_epoch`` (30) epochs are done it drops anyway, even after an earlier drop, as
  the release does. Dropping reloads the best (EMA) weights, resets the optimizer and the EMA and
  sets the rate to ``low_lr`` (1e-4).
- Loss under torchrun: each process divides its positions' loss sum by the global number of
  positions, so N processes take the same step as one.
- Evaluation: decode every (question, passage) pair as released, vote across passages, and score
  with the Sogou scorer (``accuracy``, ``f1``, ``score``; ``score`` is monitored). ``gold`` (a
  ``qid_answer_expand`` file) supplies alternatives by question id; without it each question's
  answer is its only alternative.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from zoo_core import TrainStep, Update, ZooError, model_card

from .answering import passage_spans, predict, vote
from .sogou import Gold, read_gold, score_one
from .text import answer_labels, tokenizer_of

@dataclass
class DGCNNSettings:
    """The DGCNN step's settings: the 2019 release's values (a recipe holds what it changes; ``--set KEY=VALUE``)."""

    min_count: int = 16  # characters seen fewer times in the training split are unknown (id 1)
    word_vectors: str = ""  # a word2vec file, or an installed word2vec model's id or folder ("": none)
    gold: str = ""  # a SogouQA qid_answer_expand file: the alternatives of each validation answer
    drop_min_epoch: int = 15  # the rate may drop once Keras's 0-based epoch is over this (after 17 epochs)
    drop_score: float = 0.5  # ... when the validation score is under this
    patience: int = 5  # ... or after this many validations without a new best
    drop_epoch: int = 30  # the rate drops (again) when this many epochs are done
    low_lr: float = 1e-4  # the rate after the drop

    def __post_init__(self):
        for name in ("min_count", "patience", "drop_epoch"):
            if getattr(self, name) < 1:
                raise ZooError(f"{name} must be at least 1, got {getattr(self, name)}", where=f"--set {name}=...")
        if not self.low_lr > 0:
            raise ZooError(f"low_lr must be greater than 0, got {self.low_lr}", where="--set low_lr=...",
                           hint="the release's is 1e-4")


def _world() -> int:
    dist = torch.distributed
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class DGCNNStep(TrainStep):
    """The 2019 release's training on the core's Trainer; monitors the Sogou score (higher is better)."""

    updates = (Update("training_step", ("radam",)),)
    monitor = "score"
    monitor_mode = "max"
    Settings = DGCNNSettings

    def __init__(self, model, config):
        super().__init__(model, config)
        self.dropped, self.stale, self.best, self.reloaded_last = False, 0, None, False
        self._gold = read_gold(self.settings.gold) if self.settings.gold else None

    def configure_optimizers(self):
        return {"radam": torch.optim.RAdam(self.model.parameters(), lr=float(self.config.lr))}

    def training_step(self, model, batch):
        questions, passages, answers = batch
        device = model.embedding.weight.device
        q_c, p_c, q_w, p_w, feats = tokenizer_of(model).batch(list(questions), list(passages),
                                                        features=bool(model.config.features), device=device)
        width = p_c.shape[1]
        y_start = torch.zeros(len(passages), width, device=device)
        y_end = torch.zeros_like(y_start)
        for i, (p, a) in enumerate(zip(passages, answers)):
            s, e = answer_labels(p, a)
            y_start[i, :len(s)] = torch.tensor(s, dtype=torch.float32)
            y_end[i, :len(e)] = torch.tensor(e, dtype=torch.float32)
        p_start, p_end = model(q_c, p_c, q_w, p_w, feats)
        mask = (p_c > 0).float()
        positions = mask.sum()
        world = _world()
        if world > 1:  # the global batch's positions: N processes take one process's step
            positions = positions.clone()
            torch.distributed.all_reduce(positions)
            positions = positions / world
        loss = model.loss(p_start, p_end, y_start, y_end, mask) * mask.sum() / positions
        return {"loss": loss}

    @torch.no_grad()
    def evaluate(self, model, loader):
        """Sogou accuracy, F1 and score of the voted answers over the split's questions."""
        found: dict[int, list] = {}
        gold: dict[int, Gold] = {}
        for qi, qids, questions, passages, answers in loader:
            ps, pe = predict(model, list(questions), list(passages))
            for i, text in enumerate(passages):
                q = int(qi[i])
                found.setdefault(q, []).append(passage_spans(text, ps[i], pe[i], model.config.threshold,
                                                             model.config.max_answer_len))
                if q not in gold:
                    gold[q] = self._gold_of(qids[i], answers[i])
        if not found:
            raise ZooError("the evaluation split has no questions", hint="check --limit-eval and the data folder")
        rows = [score_one(vote(found[q])["answer"], gold[q]) for q in found]
        acc = sum(r["exact"] for r in rows) / len(rows)
        f1 = sum(r["f1"] for r in rows) / len(rows)
        return {"accuracy": acc, "f1": f1, "score": (acc + f1) / 2, "questions": len(rows)}

    def _gold_of(self, qid: str, answer: str) -> Gold:
        if self._gold is not None:
            if qid not in self._gold:
                raise ZooError(f"question {qid!r} is not in the gold file", where=self.settings.gold)
            return self._gold[qid]
        return Gold.of(answer, answer)

    def after_validation(self, control, metrics):
        """The release's learning-rate drop: reload best, reset optimizer and EMA, lr 1e-4."""
        value = metrics.get("score")
        if value is not None and (self.best is None or value > self.best):
            self.best, self.stale = value, 0
        else:
            self.stale += 1
        epoch = control.state.epoch - 1  # the release's test reads Keras's 0-based number of this epoch
        # the release reloads here even after an earlier drop (once: validations by the clock can repeat)
        last = epoch + 1 == self.settings.drop_epoch and not self.reloaded_last
        due = not self.dropped and epoch > self.settings.drop_min_epoch and (
            (value is not None and value < self.settings.drop_score) or self.stale >= self.settings.patience)
        if last or due:
            control.reload_best()
            control.reset_optimizers()
            control.set_lr(self.settings.low_lr)
            if self.config.ema_decay is not None:
                control.reset_ema()
            self.dropped, self.stale, self.reloaded_last = True, 0, last

    def state_dict(self):
        return {"dropped": self.dropped, "stale": self.stale, "best": self.best, "reloaded_last": self.reloaded_last}

    def load_state_dict(self, state):
        self.dropped = bool(state.get("dropped", False))
        self.stale = int(state.get("stale", 0))
        self.best = state.get("best")
        self.reloaded_last = bool(state.get("reloaded_last", False))

    def model_card(self, model, metrics, state):
        protocol = "SogouQA scorer on the voted answers (threshold 0.1, span <= 12), the recipe's validation split"
        recorded = {k: {"value": round(float(metrics[k]), 6), "protocol": protocol}
                    for k in ("accuracy", "f1", "score") if k in metrics}
        notes = (f"Trained here: RAdam lr {self.config.lr}, EMA {self.config.ema_decay}, batch "
                 f"{self.config.batch_size}; best at step {state.step} ({state.elapsed:.0f} s).")
        config = model.config_dict()
        config["vocab"] = f"{len(model.config.vocab)} characters"
        config["words"] = f"{len(model.config.words)} words"
        return model_card(config, title="DGCNN reader", license="Apache-2.0", metrics=recorded,
                          summary="DGCNN reading-comprehension QA (Su 2019): `model.answer(question, passages)`.",
                          source="https://github.com/bojone/dgcnn_for_reading_comprehension", notes=notes)
