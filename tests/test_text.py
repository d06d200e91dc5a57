"""Text as sequences: the split, stream batches, stateful chunked training,
validation inside an epoch, the learning-rate schedule and the text preset.

Texts are generated and tiny; networks are one layer of 16 units.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from seqrnn.config import make_configs
from seqrnn.data.formats import read_sequences, split_validation
from seqrnn.data.vocab import PAD

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from seqrnn.data.batching import StreamBatches  # noqa: E402
from seqrnn.models.rnn import RNNModel  # noqa: E402
from seqrnn.models.rnn_net import RNNNet, next_event_loss  # noqa: E402
from seqrnn.train import COSINE_FLOOR, Trainer, lr_factor  # noqa: E402

TINY = dict(hidden=16, embedding_dim=8, layers=1, batch_size=4, chunk=10, seed=0, threads=1)


def toy_text(n_words: int = 400, seed: int = 0) -> str:
    """Lines of words from a small vocabulary: some structure for a model to learn."""
    rng = random.Random(seed)
    words = ["the", "king", "queen", "speaks", "to", "a", "lord", "and", "goes"]
    lines, line = [], []
    for _ in range(n_words):
        line.append(rng.choice(words))
        if len(line) == 6:
            lines.append(" ".join(line))
            line = []
    return "\n".join(lines) + "\n"


def write_text(tmp_path, text: str):
    path = tmp_path / "text.txt"
    path.write_text(text, encoding="utf-8")
    return path


# ============================================================================ split
@pytest.mark.parametrize("unit", ["chars", "words"])
def test_split_puts_the_last_tenth_in_validation(tmp_path, unit):
    text = toy_text(500)
    (seq,) = read_sequences(str(write_text(tmp_path, text)), "text", text_tokens=unit)
    tokens = list(text) if unit == "chars" else text.split()
    assert seq.tokens == tokens
    train, valid = split_validation([seq], 0.1, seed=0)
    cut = int(round(len(tokens) * 0.9))
    assert train[0].tokens == tokens[:cut]
    assert valid[0].tokens == tokens[cut:]  # the end of the file, in order, not a random tenth
    assert len(valid[0]) == pytest.approx(len(tokens) / 10, abs=1)


@pytest.mark.parametrize("unit", ["chars", "words"])
def test_text_tokens_point_at_their_line(tmp_path, unit):
    """A detection in a text points at the line of its character or word, not at line 1."""
    text = "ab cd\n\nef?\ngh ij kl\n"
    (seq,) = read_sequences(str(write_text(tmp_path, text)), "text", text_tokens=unit)
    if unit == "chars":
        assert seq.location(text.index("?")) == f"{seq.source}:3"
        assert seq.location(text.index("k")) == f"{seq.source}:4"
        assert seq.location(2) == f"{seq.source}:1"  # the space of line 1
    else:
        assert seq.tokens == ["ab", "cd", "ef?", "gh", "ij", "kl"]
        assert [seq.location(i).rsplit(":", 1)[1] for i in range(len(seq))] == ["1", "1", "3", "4", "4", "4"]
    train, valid = split_validation([seq], 0.5, seed=0)  # the held-out end keeps its lines
    assert valid[0].location(len(valid[0]) - 1) == f"{seq.source}:4"


def test_training_summary_counts_epochs_reached_not_history_rows(tmp_path):
    """With validations inside epochs (text), info's epochs is how far training went, not the rows."""
    path = write_text(tmp_path, toy_text(400))
    model = RNNModel(**TINY, epochs=2, eval_every=5).fit(str(path), format="text")
    assert len(model.history_) > 2
    assert model.training_summary()["epochs"] == model.history_[-1]["epoch"] == 2
    stopped = RNNModel(**TINY, epochs=5, minutes=1e-9).fit(str(path), format="text")
    assert 0 < stopped.training_summary()["epochs"] == stopped.history_[-1]["epoch"] < 1


def test_fit_validates_on_the_last_tenth(tmp_path):
    """The vocabulary comes from the first 90% only: a character seen only at the end is unknown."""
    text = toy_text(300) + "Z" * 5 + "\n"
    model = RNNModel(**TINY, epochs=1).fit(str(write_text(tmp_path, text)), format="text")
    assert "Z" not in model.vocab_.stoi
    assert model.n_train_events_ == int(round(len(text) * 0.9))


# ============================================================================ stream batches
def stream_batches(ids, rows=4, chunk=10, training=True):
    return StreamBatches([ids], batch_size=rows, chunk=chunk, training=training)


@pytest.mark.parametrize("n", [103, 120, 41])
def test_every_event_trained_once_per_epoch(n):
    ids = np.arange(4, 4 + n, dtype=np.int64)
    b = stream_batches(ids)
    xs, ys = zip(*[(x, y) for x, y, carry in b.epoch(None)])
    assert all(carry for _, _, carry in b.epoch(None))
    x, y = np.concatenate(xs, 1), np.concatenate(ys, 1)
    assert x.shape[0] == min(4, n // 10)
    targets = y.reshape(-1)
    np.testing.assert_array_equal(targets[targets != PAD], ids)  # each once, rows contiguous, in order
    assert len(b) == n and b.n_batches() == len(xs)
    # each input is the event before its target (BOS before the first)
    inputs = x.reshape(-1)[targets != PAD]
    np.testing.assert_array_equal(inputs[1:], ids[:-1])


def chunked_and_full_loss(net, b: StreamBatches, carry: bool = True) -> tuple[float, float]:
    """Mean loss read in chunks (state carried, or not), and over whole rows at once."""
    total, n, state = 0.0, 0, None
    with torch.no_grad():
        for x, y, _ in b.epoch(None):
            x, y = torch.from_numpy(x), torch.from_numpy(y)
            logits, new = net(x, state)
            state = new if carry else None
            total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                           ignore_index=PAD, reduction="sum"))
            n += int((y != PAD).sum())
        logits, _ = net(torch.from_numpy(b.x))
        full = float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.from_numpy(b.y).reshape(-1),
                                     ignore_index=PAD))
    return total / n, full


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_stateful_chunks_equal_one_forward_pass(cell):
    rng = np.random.default_rng(0)
    ids = rng.integers(4, 20, 997)
    mc, tc = make_configs(**{**TINY, "cell": cell, "layers": 2})
    torch.manual_seed(0)
    net = RNNNet(20, mc).eval()
    b = stream_batches(ids, rows=4, chunk=10)
    chunked, full = chunked_and_full_loss(net, b)
    assert chunked == pytest.approx(full, abs=1e-5)
    no_carry, _ = chunked_and_full_loss(net, b, carry=False)
    assert abs(no_carry - full) > 1e-4  # the state matters: dropping it changes the loss

    # The trainer's own loop (validation, then a training epoch at a negligible rate) reads the same.
    trainer = Trainer(net, tc, next_event_loss(net, tc.topk), verbose=0)
    assert trainer.run_epoch(b, False)["loss"] == pytest.approx(full, abs=1e-5)
    tc.lr = 1e-12
    trainer = Trainer(net, tc, next_event_loss(net, tc.topk), verbose=0)
    assert trainer.run_epoch(b, True)["loss"] == pytest.approx(full, abs=1e-5)


def test_gradients_of_a_chunk_equal_truncated_backprop():
    """Carried state is detached: the gradient of the second chunk stops at its start."""
    ids = np.random.default_rng(1).integers(4, 20, 80)
    mc, tc = make_configs(**{**TINY, "cell": "lstm"})  # its state is a pair
    torch.manual_seed(0)
    net = RNNNet(20, mc).eval()
    b = stream_batches(ids, rows=2, chunk=20)
    batches = [tuple(torch.from_numpy(a) for a in batch[:2]) for batch in b.epoch(None)]
    (x1, _), (x2, y2) = batches[0], batches[1]
    with torch.no_grad():
        _, state = net(x1)
    net.zero_grad()
    logits, _ = net(x2, tuple(s.detach() for s in state))
    F.cross_entropy(logits.reshape(-1, 20), y2.reshape(-1)).backward()
    g_chunk = net.embed.weight.grad.clone()
    net.zero_grad()
    logits, _ = net(torch.cat((x1, x2), 1))
    logits2 = logits[:, x1.shape[1]:]
    F.cross_entropy(logits2.reshape(-1, 20), y2.reshape(-1)).backward()
    assert not torch.allclose(g_chunk, net.embed.weight.grad)  # full back-propagation reaches further


# ============================================================================ validation cadence, bits
def test_eval_every_writes_rows_inside_epochs(tmp_path):
    path = write_text(tmp_path, toy_text(400))
    model = RNNModel(**TINY, epochs=2, eval_every=5).fit(str(path), format="text",
                                                         model_dir=str(tmp_path / "m"))
    h = model.history_
    steps_per_epoch = -(-(-(-model.n_train_events_ // 4)) // 10)  # 4 rows, chunks of 10
    assert steps_per_epoch > 5
    assert [r["step"] for r in h][:2] == [5, 10]
    assert h[-1]["step"] == model.trainer_.step == 2 * steps_per_epoch
    # a row every 5 steps and one at each epoch's end
    assert len(h) == len({*range(5, 2 * steps_per_epoch + 1, 5), steps_per_epoch, 2 * steps_per_epoch})
    assert sum(r["events"] for r in h) == 2 * model.n_train_events_  # every event twice in two epochs
    assert [r["epoch"] for r in h if float(r["epoch"]).is_integer()] == [1, 2]
    assert all(0 < r["epoch"] <= 2 for r in h)
    times = [r["time"] for r in h]
    assert times == sorted(times)
    for r in h:
        assert r["val_bits"] == pytest.approx(r["val_loss"] / math.log(2))
    csv = (tmp_path / "m" / "history.csv").read_text().splitlines()
    assert csv[0].split(",")[:9] == ["epoch", "loss", "accuracy", "topk_accuracy", "val_loss", "val_accuracy",
                                     "val_topk_accuracy", "val_bits", "lr"]
    assert len(csv) == len(h) + 1


def test_validation_loss_is_mean_over_the_last_tenth(tmp_path):
    text = toy_text(300)
    path = write_text(tmp_path, text)
    model = RNNModel(**TINY, epochs=1, dropout=0.0).fit(str(path), format="text")
    (seq,) = read_sequences(str(path), "text")
    cut = int(round(len(seq) * 0.9))
    # Training-time validation reads the last tenth as parallel rows; its count is every character once.
    tc = model.train_config
    vb = StreamBatches([model.vocab_.encode(seq.tokens[cut:])], batch_size=tc.batch_size, chunk=tc.chunk,
                       training=False)
    assert len(vb) == len(seq) - cut
    v = model.trainer_.run_epoch(vb, False)
    assert v["events"] == len(seq) - cut
    assert model.history_[-1]["val_loss"] == pytest.approx(v["loss"], rel=1e-6)


# ============================================================================ schedule
def test_lr_factor_warmup_and_cosine():
    _, tc = make_configs(schedule="cosine", warmup=10)
    assert [lr_factor(tc, s, 0.0) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert lr_factor(tc, 10, 0.0) == pytest.approx(1.0)
    assert lr_factor(tc, 10, 0.5) == pytest.approx((1 + COSINE_FLOOR) / 2)
    assert lr_factor(tc, 10, 1.0) == pytest.approx(COSINE_FLOOR)
    assert lr_factor(tc, 10, 3.0) == pytest.approx(COSINE_FLOOR)
    values = [lr_factor(tc, 10, p / 20) for p in range(21)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    _, const = make_configs()
    assert lr_factor(const, 0, 0.7) == 1.0
    _, wsd = make_configs(schedule="wsd", warmup=10)
    assert lr_factor(wsd, 4, 0.0) == pytest.approx(0.5)
    assert [lr_factor(wsd, 10, p) for p in (0.0, 0.5, 0.7)] == [1.0, 1.0, 1.0]  # held ...
    assert lr_factor(wsd, 10, 0.85) == pytest.approx((1 + COSINE_FLOOR) / 2)  # ... then decayed
    assert lr_factor(wsd, 10, 1.0) == pytest.approx(COSINE_FLOOR)


def test_minutes_stop_logs_the_fraction_of_the_epoch(tmp_path):
    path = write_text(tmp_path, toy_text(400))
    model = RNNModel(**TINY, epochs=5, minutes=1e-9).fit(str(path), format="text")
    (row,) = model.history_  # stopped after the first step, validated once
    n_batches = -(-(-(-model.n_train_events_ // 4)) // 10)
    assert row["step"] == 1 and row["epoch"] == round(1 / n_batches, 3)
    assert "val_loss" in row


def test_cosine_schedule_over_epochs(tmp_path):
    path = write_text(tmp_path, toy_text(300))
    model = RNNModel(**TINY, epochs=4, lr=0.01, schedule="cosine", warmup=2).fit(
        str(path), format="text")
    lrs = [r["lr"] for r in model.history_]
    assert all(a > b for a, b in zip(lrs, lrs[1:]))
    # the last step's rate: the cosine at (steps - 1) / steps of the way, close to the floor
    total = model.trainer_.total_steps
    expected = 0.01 * lr_factor(model.train_config, total - 1, (total - 1) / total)
    assert lrs[-1] == pytest.approx(expected)
    assert lrs[-1] < 0.0125 * COSINE_FLOOR * 1.5


def test_constant_schedule_leaves_the_rate_alone(tmp_path):
    path = write_text(tmp_path, toy_text(200))
    model = RNNModel(**TINY, epochs=2, lr=0.01).fit(str(path), format="text")
    assert [r["lr"] for r in model.history_] == [0.01, 0.01]


def test_bad_schedule_settings():
    from seqrnn.errors import InputError

    with pytest.raises(InputError, match="schedule"):
        make_configs(schedule="linear")
    with pytest.raises(InputError, match="eval_every"):
        make_configs(eval_every=-1)


def test_text_preset():
    mc, tc = make_configs("text")
    assert (mc.layers, mc.hidden, mc.embedding_dim, mc.cell) == (2, 512, 64, "lstm")
    assert tc.schedule == "wsd" and tc.eval_every > 0 and tc.patience == 0 and mc.dropout > 0
    assert (tc.optimizer, tc.weight_decay) == ("adamw", 0.1)  # decoupled decay: ten minutes overfit the text


def test_another_optimizer_than_the_text_presets_does_not_inherit_its_weight_decay():
    # AdamW's decoupled 0.1 given to Adam as an L2 penalty (--format text --optimizer adam) barely trained.
    for opt in ("adam", "rmsprop", "sgd"):
        assert make_configs("text", optimizer=opt)[1].weight_decay == 0.0
    assert make_configs("text", optimizer="adam", weight_decay=0.01)[1].weight_decay == 0.01
    assert make_configs("text", optimizer="adamw")[1].weight_decay == 0.1
    assert make_configs("text", weight_decay=0.0)[1].optimizer == "adamw"


def test_a_line_per_period_under_a_time_budget_shows_the_time_not_the_epoch_cap():
    from seqrnn.config import TrainConfig
    from seqrnn.train import format_logs

    logs = {"epoch": 0.134, "loss": 3.37, "events": 1000, "events_per_second": 8353.0, "seconds": 16.1,
            "time": 16.4, "lr": 3e-3, "step": 42}
    timed = format_logs(logs, TrainConfig(epochs=30, minutes=0.85))
    assert timed.startswith("epoch 0.134  16s of 51s of training") and "/30" not in timed
    assert format_logs(logs, TrainConfig(epochs=30)).startswith("epoch 0.134/30  loss 3.3700")
