"""Feedback without retraining: normal sequences given back after training (``seqrnn calibrate``).

A false positive an operator confirms is normal data the detector had not
seen. :meth:`seqrnn.detect.Detector.add_normal` folds such sequences into
the calibration (their views' values, their count profiles, their unseen
tokens) and recomputes the promise with the new number of sequences;
:func:`fine_tune` also updates a neural network on them, a few epochs at a
lower learning rate (DeepLog's online update).
"""

from __future__ import annotations

from dataclasses import replace

FINE_TUNE_EPOCHS = 3
FINE_TUNE_LR_FACTOR = 0.1  # of the model's training learning rate


def fine_tune(model, seqs, epochs: int = FINE_TUNE_EPOCHS, lr: float | None = None) -> None:
    """Train ``model``'s network further on ``seqs`` (its vocabulary unchanged: an unseen token stays unseen)."""
    from .errors import InputError
    from .models.rnn_net import next_event_loss
    from .train import Trainer

    if not hasattr(model, "train_config") or not hasattr(model, "net_"):
        raise InputError(f"a {model.kind} model has no network to fine-tune; drop --fine-tune", params="fine_tune")
    if epochs < 1:
        raise InputError(f"epochs must be at least 1, not {epochs}", params="epochs")
    tc = replace(model.train_config, epochs=epochs, patience=0, minutes=0.0, eval_every=0, warmup=0,
                 schedule="constant", lr=lr if lr is not None else model.train_config.lr * FINE_TUNE_LR_FACTOR)
    model.set_threads()
    ids, complete = model.encode(seqs)
    batches = model._batches(ids, complete, training=True)
    loss = next_event_loss(model.net_, tc.topk, last_only=model.model_config.mapping == "many-to-one")
    trainer = Trainer(model.net_, tc, loss, model_config=model.model_config, vocabulary=model.vocab_.itos,
                      verbose=0)
    model.net_.train()
    trainer.fit(batches, None)
    model.net_.eval()
    # It has trained on them now: a calibration from scratch must not take them for held-out sessions
    model.fine_tuned_sequences_ = getattr(model, "fine_tuned_sequences_", 0) + len(seqs)
