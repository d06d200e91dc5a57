"""Text at a time budget: the sizing rule, explicit flags winning over it, the trainer keeping the
last validation inside --minutes, the bounded calibration, the under-one-epoch note, and the
dedicated generation step (the same numbers as the forward pass).

Texts are generated and tiny; trained networks are one layer of 16 units.
"""

from __future__ import annotations

import json
import math
import os
import re

import numpy as np
import pytest
from conftest import run_cli

from seqrnn.budget import (
    BF16_MIN,
    BF16_SPEEDUP,
    CHAR_SIZES,
    MANY_EPOCHS,
    MANY_EPOCHS_DROPOUT,
    REFERENCE_GFLOPS,
    WORD_CHUNK,
    WORD_HIDDEN,
    WORD_MANY_EPOCHS,
    WORD_MANY_EPOCHS_DROPOUT,
    WORD_MIN_COUNT,
    WORD_ROWS,
    WORD_SPEED_VOCABULARY,
    WORD_WORDS_PER_SECOND,
    flops_per_token,
    reference_minutes,
    sizing_inputs,
    text_settings,
)

torch = pytest.importorskip("torch")
from seqrnn.config import ModelConfig
from seqrnn.generate import RecurrentStep
from seqrnn.models.rnn_net import RNNNet

TEXT = "".join(("ROMEO: a rose by any other name\n", "JULIET: would smell as sweet\n")) * 30


# ============================================================================ the rule
def test_reference_minutes_scale_with_the_machine():
    assert reference_minutes(10, REFERENCE_GFLOPS) == pytest.approx(10)
    assert reference_minutes(10, REFERENCE_GFLOPS / 2) == pytest.approx(5)  # one thread of two


def test_rows_by_budget_and_a_larger_budget_never_a_smaller_model():
    sizes = [text_settings(m, REFERENCE_GFLOPS).settings for m in (0.5, 1, 3, 5, 10, 30, 120)]
    cost = [flops_per_token(s["layers"], s["hidden"], s["embedding_dim"], 100) for s in sizes]
    assert cost == sorted(cost)
    assert sizes[-1]["hidden"] > sizes[0]["hidden"]
    # The same minutes on a machine half as fast are a smaller budget: a row at most as large.
    slow = text_settings(10, REFERENCE_GFLOPS / 4).settings
    assert slow["hidden"] * slow["layers"] <= sizes[4]["hidden"] * sizes[4]["layers"]
    # The table's last row takes any budget.
    assert CHAR_SIZES[-1].up_to == math.inf
    assert text_settings(10_000, REFERENCE_GFLOPS).settings["hidden"] == CHAR_SIZES[-1].hidden


def test_short_budgets_take_more_smaller_steps():
    """A run of a few minutes is short of updates: 32 rows a step (as many characters/s as 64); from the
    2x384 row on, 64 (docs/text.md)."""
    assert [text_settings(m, REFERENCE_GFLOPS).settings["batch_size"] for m in (1, 3, 10, 40)] == [32, 32, 64, 64]
    assert text_settings(1, REFERENCE_GFLOPS).describe().count("32 rows of 50") == 1


def test_validation_period_follows_the_budget():
    plan = text_settings(10, REFERENCE_GFLOPS, train_minutes=9.5)
    s = plan.settings
    steps = plan.expected_tokens / (s["batch_size"] * s["chunk"])
    assert 8 <= steps / s["eval_every"] <= 11  # about one validation a minute, at most 10
    short = text_settings(1, REFERENCE_GFLOPS, train_minutes=0.8).settings
    short_steps = text_settings(1, REFERENCE_GFLOPS, train_minutes=0.8).expected_tokens / (
        short["batch_size"] * short["chunk"])
    assert short_steps / short["eval_every"] == pytest.approx(3, abs=0.5)  # at least 3


def test_words_are_2x128_in_32_rows_and_a_text_read_many_times_gets_dropout_half():
    chars = text_settings(10, REFERENCE_GFLOPS).settings
    for vocab in (2_000, 50_000):
        for minutes in (1, 10, 60):
            words = text_settings(minutes, REFERENCE_GFLOPS, tokens="words", vocab_size=vocab, chars_per_token=6)
            s = words.settings
            assert (s["layers"], s["hidden"], s["batch_size"]) == (2, WORD_HIDDEN, WORD_ROWS) == (2, 128, 32)
            assert s["embedding_dim"] > chars["embedding_dim"]
    # the plan's speed: the measured one of 2x128, its output layer scaled to the vocabulary; the same model
    # the same speed on either side of a row's edge
    plan = text_settings(10, REFERENCE_GFLOPS, tokens="words", vocab_size=10_000, chars_per_token=6)
    flops = flops_per_token(2, 128, 128, WORD_SPEED_VOCABULARY) / flops_per_token(2, 128, 128, 10_000)
    assert plan.tokens_per_second == pytest.approx(WORD_WORDS_PER_SECOND * flops)
    for edge in (CHAR_SIZES[0].up_to, CHAR_SIZES[1].up_to):
        below, above = (text_settings(edge * f, REFERENCE_GFLOPS, tokens="words", vocab_size=10_000)
                        for f in (0.999, 1.001))
        assert above.tokens_per_second == pytest.approx(below.tokens_per_second)
    at = plan.expected_tokens / WORD_MANY_EPOCHS / 0.9  # a text whose training part is read WORD_MANY_EPOCHS times
    read_often = text_settings(10, REFERENCE_GFLOPS, tokens="words", vocab_size=10_000, chars_per_token=6,
                               text_tokens=int(at))
    assert read_often.settings["dropout"] == WORD_MANY_EPOCHS_DROPOUT == 0.5
    once_more = text_settings(10, REFERENCE_GFLOPS, tokens="words", vocab_size=10_000, chars_per_token=6,
                              text_tokens=int(at * 1.05))
    assert once_more.settings["dropout"] == CHAR_SIZES[2].dropout  # the row's
    # characters keep their own rule: the same text length read as characters is not a word model's
    assert text_settings(10, REFERENCE_GFLOPS, text_tokens=int(at)).settings["dropout"] < 0.5


def test_words_are_read_in_short_chunks_and_words_seen_once_are_unknown():
    assert text_settings(3, REFERENCE_GFLOPS).settings["chunk"] == 50
    assert "min_count" not in text_settings(3, REFERENCE_GFLOPS).settings  # characters: every one kept
    words = text_settings(3, REFERENCE_GFLOPS, tokens="words", vocab_size=20_000, chars_per_token=5.5)
    assert words.settings["chunk"] == WORD_CHUNK < 50
    assert words.settings["min_count"] == WORD_MIN_COUNT == 2
    assert f"rows of {WORD_CHUNK}," in words.describe()


def test_bfloat16_where_the_processor_multiplies_it_faster():
    plain = text_settings(10, REFERENCE_GFLOPS, bf16=BF16_MIN - 0.01)
    fast = text_settings(10, REFERENCE_GFLOPS, bf16=BF16_MIN)
    assert "precision" not in plain.settings and " in bfloat16," not in plain.describe()
    assert fast.settings["precision"] == "bfloat16" and "LSTM in bfloat16, dropout" in fast.describe()
    assert fast.expected_tokens == pytest.approx(plain.expected_tokens * BF16_SPEEDUP)  # so the validations stay
    assert fast.settings["eval_every"] == pytest.approx(plain.settings["eval_every"] * BF16_SPEEDUP, abs=1)
    assert {k: v for k, v in fast.settings.items() if k not in ("precision", "eval_every")} == {
        k: v for k, v in plain.settings.items() if k != "eval_every"}  # the same model


def test_a_run_that_reads_its_text_many_times_gets_more_dropout():
    plan = text_settings(10, REFERENCE_GFLOPS)
    row_dropout = plan.settings["dropout"]
    assert row_dropout < MANY_EPOCHS_DROPOUT  # the 10-minute row's own dropout is less
    # The text whose training part the plan reads exactly MANY_EPOCHS times, and one a little longer.
    at = plan.expected_tokens / MANY_EPOCHS / 0.9
    assert text_settings(10, REFERENCE_GFLOPS, text_tokens=int(at)).settings["dropout"] == MANY_EPOCHS_DROPOUT
    assert text_settings(10, REFERENCE_GFLOPS, text_tokens=int(at)).describe().endswith("; about 12.0 epochs")
    assert "epochs" not in plan.describe() and plan.expected_epochs is None  # no text, no count
    longer = text_settings(10, REFERENCE_GFLOPS, text_tokens=int(at * 1.05)).settings
    assert longer["dropout"] == row_dropout
    assert {k: v for k, v in longer.items() if k != "dropout"} == {
        k: v for k, v in text_settings(10, REFERENCE_GFLOPS, text_tokens=int(at)).settings.items() if k != "dropout"}
    # The validation part does not count as read; a faster machine reads the same text more times.
    assert text_settings(10, REFERENCE_GFLOPS, text_tokens=int(at * 1.05),
                         validation_split=0.5).settings["dropout"] == MANY_EPOCHS_DROPOUT
    assert text_settings(10, REFERENCE_GFLOPS, text_tokens=int(at * 1.05),
                         bf16=BF16_MIN).settings["dropout"] == MANY_EPOCHS_DROPOUT
    # Never less than the row's: the last row's 0.2 stays whatever the text.
    assert text_settings(10_000, REFERENCE_GFLOPS, text_tokens=10 ** 12).settings["dropout"] == CHAR_SIZES[-1].dropout


def test_probe_bf16_is_a_ratio_of_rates(monkeypatch):
    from seqrnn import budget

    rates = {"float32": 100.0, "bfloat16": 250.0}
    monkeypatch.setattr(budget, "probe_gflops", lambda n=256, seconds=0.25, dtype="float32": rates[dtype])
    assert budget.probe_bf16(100.0) == pytest.approx(2.5)
    monkeypatch.undo()
    assert budget.probe_gflops(32, 0.01, dtype="bfloat16") > 0


def test_sizing_inputs_count_the_vocabulary_and_the_characters_a_word_stands_for():
    from seqrnn.data.formats import Sequence

    words = [Sequence("w", ["to", "be", "or", "not", "to", "be"])]
    # words seen once are <unk> (WORD_MIN_COUNT): "to" and "be" are the vocabulary
    assert sizing_inputs(words, "words") == dict(tokens="words", text_tokens=6, vocab_size=2 + 4,
                                                 chars_per_token=19 / 6)  # 13 letters and 6 spaces
    assert sizing_inputs(words, "words", min_count=1)["vocab_size"] == 4 + 4  # as the user's --min-count says
    chars = [Sequence("c", list("abca")), Sequence("d", list("ab"))]
    assert sizing_inputs(chars) == dict(tokens="chars", text_tokens=6, vocab_size=3 + 4, chars_per_token=1.0)
    assert sizing_inputs([], "words")["chars_per_token"] == 0.0


# ============================================================================ the command
def train_text(capsys, tmp_path, *flags):
    path = tmp_path / "t.txt"
    path.write_text(TEXT, encoding="utf-8")
    folder = tmp_path / "m"
    code, out, err = run_cli(capsys, "train", path, "--format", "text", "--model-dir", folder, "--threads", "1",
                             *flags)
    assert code == 0, err
    with open(folder / "config.json", encoding="utf-8") as f:
        return json.load(f)["settings"], err, folder


def test_minutes_sizes_the_model_and_explicit_flags_win(capsys, tmp_path, monkeypatch):
    from seqrnn import budget

    monkeypatch.setattr(budget, "probe_gflops", lambda: REFERENCE_GFLOPS)  # the table's machine ...
    monkeypatch.setattr(budget, "probe_bf16", lambda gflops: 0.5)  # ... without bfloat16 products
    # A tiny model that the table would give for this budget keeps the test fast.
    monkeypatch.setattr(budget, "CHAR_SIZES", (budget.Size(math.inf, 1, 24, 0.0, 30_000.0, embedding_dim=8,
                                                           batch_size=4, chunk=10),))
    settings, err, _ = train_text(capsys, tmp_path, "--minutes", "0.05", "--quiet")
    assert (settings["layers"], settings["hidden"], settings["embedding_dim"], settings["chunk"]) == (1, 24, 8, 10)
    assert settings["minutes"] < 0.05  # the rest of the budget is for calibration and saving
    assert settings["schedule"] == "wsd"  # the text preset under the sized settings
    # An explicit size is the user's: the preset's other settings, not the table's.
    settings, _, _ = train_text(capsys, tmp_path, "--minutes", "0.05", "--hidden", "12", "--chunk", "7",
                                "--quiet")
    assert (settings["hidden"], settings["chunk"], settings["layers"]) == (12, 7, 2)
    # An explicit setting beside no size keeps its value, the table gives the rest.
    settings, _, _ = train_text(capsys, tmp_path, "--minutes", "0.05", "--batch-size", "3", "--quiet")
    assert (settings["hidden"], settings["batch_size"]) == (24, 3)
    # ... and the sized run's first line says so: the settings trained, not the table's.
    settings, err, _ = train_text(capsys, tmp_path, "--minutes", "0.05", "--batch-size", "3", "--dropout", "0.3",
                                  "--weight-drop", "0.2", "--no-calibration")
    assert (settings["batch_size"], settings["dropout"], settings["weight_drop"]) == (3, 0.3, 0.2)
    assert "1x24 LSTM, dropout 0.3, weight drop 0.2, 3 rows of 10," in err.splitlines()[0], err


def test_a_sized_word_model_learns_unknown_words_unless_told_otherwise(capsys, tmp_path, monkeypatch):
    """Words seen once are <unk> in a sized word model, so that it learns the token the held-out text's new
    words are read as; --min-count given is the user's."""
    from seqrnn import budget

    monkeypatch.setattr(budget, "probe_gflops", lambda: REFERENCE_GFLOPS)
    monkeypatch.setattr(budget, "probe_bf16", lambda gflops: 0.5)
    monkeypatch.setattr(budget, "CHAR_SIZES", (budget.Size(math.inf, 1, 24, 0.0, 30_000.0, embedding_dim=8,
                                                           batch_size=4, chunk=10),))
    monkeypatch.setattr(budget, "WORD_HIDDEN", 16)
    path = tmp_path / "t.txt"
    path.write_text("nonce words here pair pair\n" + TEXT, encoding="utf-8")  # three words seen once, one twice

    def vocabulary(*flags):
        folder = tmp_path / f"m{len(flags)}"
        code, _, err = run_cli(capsys, "train", path, "--format", "text", "--tokens", "words", "--minutes", "0.05",
                               "--model-dir", folder, "--threads", "1", "--no-calibration", "--quiet", *flags)
        assert code == 0, err
        with open(folder / "config.json", encoding="utf-8") as f:
            config = json.load(f)
        return config["settings"]["min_count"], set(config["vocabulary"]["tokens"])

    min_count, tokens = vocabulary()
    assert min_count == 2 and {"ROMEO:", "rose", "sweet"} <= tokens and not {"nonce", "words", "here"} & tokens
    code, out, err = run_cli(capsys, "generate", tmp_path / "m0", "--prompt", "ROMEO: a rose", "--length", "30",
                             "--seed", "0")
    assert code == 0 and "<unk>" not in out  # learned, never drawn
    code, _, err = run_cli(capsys, "generate", tmp_path / "m0", "--prompt", "nonce rose")
    assert code == 2 and "outside the model's vocabulary (seen fewer than 2 times in training" in err
    assert err.rstrip().endswith("'nonce'")
    min_count, tokens = vocabulary("--min-count", "1")
    assert min_count == 1 and {"nonce", "words", "here"} <= tokens
    min_count, tokens = vocabulary("--hidden", "8", "--layers", "1")  # a size given: the vocabulary rule stays
    assert min_count == 2 and not {"nonce", "words", "here"} & tokens
    # --resume keeps the vocabulary the model was started with (it read min_count 1, and the checkpoint refused)
    code, _, err = run_cli(capsys, "train", path, "--format", "text", "--tokens", "words", "--minutes", "0.05",
                           "--model-dir", tmp_path / "m0", "--threads", "1", "--no-calibration", "--quiet", "--resume")
    assert code == 0, err
    assert vocabulary("--min-count", "3", "--chunk", "5") == (3, tokens - {"pair"})  # in m4
    code, _, err = run_cli(capsys, "train", path, "--format", "text", "--tokens", "words", "--minutes", "0.05",
                           "--model-dir", tmp_path / "m4", "--threads", "1", "--no-calibration", "--quiet", "--resume")
    assert code == 0, err  # its min_count 3 kept, not the sized 2


def test_a_sized_run_trains_in_bfloat16_where_it_is_faster_and_validates_in_float32(capsys, tmp_path, monkeypatch):
    from seqrnn import budget
    from seqrnn.train import autocast

    monkeypatch.setattr(budget, "probe_gflops", lambda: REFERENCE_GFLOPS)
    monkeypatch.setattr(budget, "probe_bf16", lambda gflops: 2.0)
    monkeypatch.setattr(budget, "CHAR_SIZES", (budget.Size(math.inf, 1, 24, 0.0, 30_000.0, embedding_dim=8,
                                                           batch_size=4, chunk=10),))
    settings, err, folder = train_text(capsys, tmp_path, "--minutes", "0.05", "--no-calibration")
    assert settings["precision"] == "bfloat16" and "1x24 LSTM in bfloat16," in err.splitlines()[0]
    assert "saved " in err and os.path.isfile(folder / "model.safetensors")  # it trained
    settings, err, _ = train_text(capsys, tmp_path, "--minutes", "0.05", "--precision", "float32", "--no-calibration")
    assert settings["precision"] == "float32" and " in bfloat16" not in err  # explicit wins
    cpu, lin, x = torch.device("cpu"), torch.nn.Linear(4, 4), torch.randn(2, 4)
    with autocast(cpu, "bfloat16", training=True):
        assert lin(x).dtype == torch.bfloat16
    for precision, training in (("bfloat16", False), ("auto", True), ("float32", True)):
        with autocast(cpu, precision, training):
            assert lin(x).dtype == torch.float32, (precision, training)


def test_under_one_epoch_says_so_and_calibration_is_bounded(capsys, tmp_path, monkeypatch):
    import seqrnn.cli.train as cli_train
    from seqrnn import budget

    monkeypatch.setattr(budget, "probe_gflops", lambda: REFERENCE_GFLOPS)
    monkeypatch.setattr(budget, "probe_bf16", lambda gflops: 0.5)
    monkeypatch.setattr(budget, "CHAR_SIZES", (budget.Size(math.inf, 1, 16, 0.0, 30_000.0, embedding_dim=8,
                                                           batch_size=2, chunk=10),))
    monkeypatch.setattr(cli_train, "CALIBRATION_SECONDS", (0.0, 0.0))  # no time left: the smallest sample
    monkeypatch.setattr(cli_train, "CALIBRATION_SHARE", 0.0)
    settings, err, folder = train_text(capsys, tmp_path, "--minutes", "0.0005", "--eval-every", "1")
    assert "of one epoch of the training data" in err
    sample = int(re.search(r"calibrating detection on ([\d,]+) held-out events", err)[1].replace(",", ""))
    assert 0 < sample <= 256  # the probe's piece, no more
    assert "reference minutes" in err and os.path.isfile(folder / "detector.json")


def test_no_calibration_skips_the_detector(capsys, tmp_path):
    _, _, folder = train_text(capsys, tmp_path, "--hidden", "8", "--layers", "1", "--embedding-dim", "4",
                              "--epochs", "1", "--no-calibration", "--quiet")
    assert os.path.isfile(folder / "config.json") and not os.path.exists(folder / "detector.json")


def test_last_validation_counts_in_the_minutes():
    """The trainer stops early enough for the validation that follows the last step."""
    from seqrnn.config import TrainConfig
    from seqrnn.train import Trainer

    net = torch.nn.Linear(2, 2)
    tr = Trainer(net, TrainConfig(minutes=1.0), loss=None, verbose=0)
    tr._val_events = 3000
    assert tr._final_validation(1000.0) == pytest.approx(1.0)  # before any: a third of training's rate
    tr.val_seconds = 6.0
    assert tr._final_validation(1000.0) == 7.5  # then the last one's duration, and a quarter more
    tr.reserve_seconds = 2.5
    tr.started -= 25.0  # 25 s of a 60 s budget less 10 s for the last validation and the reserve
    assert tr._progress() == pytest.approx(0.5, abs=0.01)


# ============================================================================ generation step
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_recurrent_step_matches_the_forward_pass(cell):
    torch.manual_seed(0)
    net = RNNNet(30, ModelConfig(cell=cell, layers=3, hidden=12, embedding_dim=5, dropout=0.3)).eval()
    x = torch.randint(0, 30, (3, 15))
    with torch.inference_mode():
        ref, ref_state = net(x)
        step = RecurrentStep(net, rows=3)
        _, state = net(x[:, :1])
        step.start(state)
        out = [step.step(x[:, t].numpy()).copy() for t in range(1, 15)]
    assert np.allclose(np.stack(out, 1), ref[:, 1:].numpy(), atol=1e-5)
    # the state carried is the forward pass's, layer by layer
    h, c = ref_state if cell == "lstm" else (ref_state, None)
    for i, layer in enumerate(step.state()):
        mine_h, mine_c = layer if cell == "lstm" else (layer, None)
        assert np.allclose(mine_h, h[i].numpy(), atol=1e-5)
        if c is not None:
            assert np.allclose(mine_c, c[i].numpy(), atol=1e-5)
