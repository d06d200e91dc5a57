"""Generation: reproducible, greedy at temperature 0, top-k and top-p filters,
incremental (one step per token, the same distributions as a full forward
pass), stopping at the end of a session, and the ``generate`` command.

Models are one layer of 16 units trained for a few epochs on generated data.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from conftest import TINY_SETTINGS, run_cli
from seqrnn.data.vocab import BOS, EOS, PAD, UNK
from seqrnn.errors import InputError

torch = pytest.importorskip("torch")
from seqrnn.generate import (  # noqa: E402
    SAMPLE_TEMPERATURES,
    SampleCallback,
    Sampler,
    _generate_stream,
    generate,
    pick,
    render,
)
from seqrnn.models.rnn import RNNModel  # noqa: E402

TEXT = "".join(("ROMEO: a rose by any other name\n", "JULIET: would smell as sweet\n")) * 12


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gen")
    path = folder / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    model = RNNModel(**{**TINY_SETTINGS, "epochs": 4, "chunk": 20, "batch_size": 4, "lr": 0.02})
    model.fit(str(path), format="text", model_dir=str(folder / "model"))
    return model, str(folder / "model")


@pytest.fixture(scope="module")
def session_model(tmp_path_factory):
    from conftest import write_toy_sessions

    folder = tmp_path_factory.mktemp("gens")
    path = write_toy_sessions(folder / "s.txt")
    model = RNNModel(**{**TINY_SETTINGS, "epochs": 8, "lr": 0.02}).fit(str(path),
                                                                       model_dir=str(folder / "model"))
    return model, str(folder / "model")


def full_pass(model, sample):
    """Log-probabilities of the prompt and sample read in one forward pass."""
    ids = np.array(sample.prompt + sample.ids, dtype=np.int64)
    return model.log_proba([ids], [False])[0][len(sample.prompt):]


# ============================================================================ sampling
def test_same_seed_same_samples(text_model):
    model, _ = text_model
    a = generate(model, "ROMEO:", length=60, temperature=1.0, num_samples=3, seed=7)
    b = generate(model, "ROMEO:", length=60, temperature=1.0, num_samples=3, seed=7)
    c = generate(model, "ROMEO:", length=60, temperature=1.0, num_samples=3, seed=8)
    assert [s.ids for s in a] == [s.ids for s in b]
    assert [s.ids for s in a] != [s.ids for s in c]
    assert len({tuple(s.ids) for s in a}) > 1  # the samples of one call differ from each other
    assert all(len(s.ids) == 60 for s in a)


def test_temperature_to_zero_is_greedy(text_model):
    model, _ = text_model
    (greedy,) = generate(model, "JU", length=50, temperature=0)
    for seed in range(3):
        (cold,) = generate(model, "JU", length=50, temperature=1e-4, seed=seed)
        assert cold.ids == greedy.ids
    # greedy takes the most likely token of the full forward pass at every step
    lp = full_pass(model, greedy)
    lp[:, [PAD, UNK, BOS, EOS]] = -np.inf
    np.testing.assert_array_equal(lp.argmax(1), greedy.ids)


def test_generation_is_incremental_and_matches_a_full_pass(text_model, monkeypatch):
    from seqrnn.generate import RecurrentStep

    model, _ = text_model
    lengths = []
    step = RecurrentStep.step
    monkeypatch.setattr(RecurrentStep, "step", lambda self, t: (lengths.append(t.shape), step(self, t))[1])
    hook = model.net_.rnn.register_forward_hook(lambda m, inp, out: lengths.append(inp[0].shape[1]))
    try:
        samples = generate(model, "ROMEO:", length=40, temperature=1.0, num_samples=2, seed=3)
    finally:
        hook.remove()
    # The prompt once through the network, then one step per new token (two samples side by side).
    assert lengths == [len("ROMEO:") + 1] + [(2,)] * 39
    for s in samples:
        lp = full_pass(model, s)
        np.testing.assert_allclose(s.logprob, lp[np.arange(len(s.ids)), s.ids], atol=1e-4)


def test_top_k_never_leaves_the_top_k(text_model):
    model, _ = text_model
    samples = generate(model, "R", length=80, temperature=3.0, top_k=2, num_samples=4, seed=0)
    for s in samples:
        lp = full_pass(model, s)
        lp[:, [PAD, UNK, BOS, EOS]] = -np.inf
        rank = (lp > lp[np.arange(len(s.ids)), s.ids][:, None]).sum(1)
        assert rank.max() <= 1
    # a hot unfiltered sample does leave the top 2
    (free,) = generate(model, "R", length=80, temperature=3.0, seed=0)
    lp = full_pass(model, free)
    assert ((lp > lp[np.arange(len(free.ids)), free.ids][:, None]).sum(1) > 1).any()


def test_pick_filters():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(500, 30)
    top = set()
    for k in (1, 3):
        drawn = pick(logits, 5.0, top_k=k, generator=gen)
        masked = logits.clone()
        masked[:, [PAD, UNK, BOS, EOS]] = -torch.inf
        allowed = masked.topk(k, dim=-1).indices
        assert (allowed == drawn[:, None]).any(1).all()
        top.add(k)
    # top-p: probabilities .5 .3 .15 .05 on ids 4..7; p=0.7 keeps the first two
    lp = torch.full((2000, 8), -torch.inf)
    lp[:, 4:] = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    drawn = pick(lp, 1.0, top_p=0.7, generator=gen)
    assert set(drawn.tolist()) == {4, 5}
    assert set(pick(lp, 1.0, generator=gen).tolist()) == {4, 5, 6, 7}
    # reserved ids are never drawn, EOS only when allowed
    lp = torch.zeros(1000, 6)
    assert set(pick(lp, 1.0, generator=gen).tolist()) == {4, 5}
    assert set(pick(lp, 1.0, generator=gen, allow_eos=True).tolist()) == {EOS, 4, 5}


def test_text_model_never_ends_and_renders_text(text_model):
    model, _ = text_model
    (s,) = generate(model, "ROMEO:", length=100, temperature=1.0, seed=1)
    assert not s.ended and len(s.ids) == 100 and min(s.ids) > EOS
    text = render(model, s)
    assert text.startswith("ROMEO:") and len(text) == 106
    assert render(model, s, with_prompt=False) == text[6:]


def test_session_model_stops_at_the_end(session_model):
    model, _ = session_model
    samples = generate(model, None, length=50, temperature=1.0, num_samples=20, seed=0)
    assert all(s.ended for s in samples)
    assert all(EOS not in s.ids and len(s.ids) < 50 for s in samples)
    # the toy grammar: a, b (1-3 times), c, sometimes e, d
    lines = [render(model, s) for s in samples]
    assert sum(line.startswith("a b") and line.endswith("d") for line in lines) >= 15
    (short,) = generate(model, "a", length=1, temperature=0)
    assert short.ids == [model.vocab_.stoi["b"]] and not short.ended


def test_many_to_one_slides_its_window(tmp_path, session_model):
    from conftest import write_toy_sessions

    path = write_toy_sessions(tmp_path / "s.txt")
    model = RNNModel(**{**TINY_SETTINGS, "mapping": "many-to-one", "window": 4, "epochs": 2}).fit(
        str(path))
    (s,) = generate(model, "a b", length=6, temperature=0)
    ids = np.array(s.prompt + s.ids, dtype=np.int64)
    lp = model.log_proba([ids], [False])[0][len(s.prompt):]
    lp[:, [PAD, UNK, BOS]] = -np.inf
    n = len(s.ids) + (1 if s.ended else 0)
    np.testing.assert_array_equal(lp.argmax(1)[:len(s.ids)], s.ids)
    assert n >= 1


def test_any_model_through_stream_step(text_model):
    """The generic path (stream_step) draws what the recurrent fast path draws, greedily."""
    model, _ = text_model
    (fast,) = generate(model, "ROMEO:", length=30, temperature=0)
    rows, _ = _generate_stream(model, model.vocab_.encode(list("ROMEO:")), 1, 30, Sampler(len(model.vocab_), 0))
    assert rows[0] == fast.ids


def test_prompt_errors_and_settings(text_model):
    model, _ = text_model
    with pytest.raises(InputError, match="never saw"):
        generate(model, "ROMEO: 1234", length=5)
    for bad in (dict(temperature=-1), dict(top_p=0), dict(top_k=-1), dict(num_samples=0), dict(length=-1)):
        with pytest.raises(InputError):
            generate(model, "R", **bad)


# ============================================================================ during training
def test_sample_callback_prints_and_leaves_training_alone(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text(TEXT, encoding="utf-8")
    settings = {**TINY_SETTINGS, "epochs": 2, "chunk": 20, "batch_size": 4}
    out = io.StringIO()
    with_cb = RNNModel(**settings)
    with_cb.fit(str(path), format="text",
                callbacks=[SampleCallback(with_cb, every=1, length=20, prompt="RO", file=out)])
    plain = RNNModel(**settings).fit(str(path), format="text")
    text = out.getvalue()
    assert text.count("----- samples at epoch") == 2
    for t in SAMPLE_TEMPERATURES:
        assert text.count(f"temperature {t}:\nRO") == 2
    for k, v in plain.net_.state_dict().items():
        assert torch.equal(v, with_cb.net_.state_dict()[k]), k


# ============================================================================ command line
def test_cli_generate_text(capsys, text_model):
    _, folder = text_model
    code, out, _ = run_cli(capsys, "generate", folder, "--prompt", "ROMEO:", "--length", "50",
                           "--temperature", "0.8", "--seed", "1")
    (s,) = generate(text_model[0], "ROMEO:", length=50, temperature=0.8, seed=1)
    text = render(text_model[0], s)
    assert code == 0 and len(text) == 56 and out == (text if text.endswith("\n") else text + "\n")
    code, again, _ = run_cli(capsys, "generate", folder, "--prompt", "ROMEO:", "--length", "50",
                             "--temperature", "0.8", "--seed", "1")
    assert again == out
    code, out, _ = run_cli(capsys, "generate", folder, "--length", "10", "-n", "3", "--json", "--seed", "2")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["sample"] for r in rows] == [1, 2, 3] and all(len(r["tokens"]) == 10 for r in rows)
    assert all(r["text"] == "".join(r["tokens"]) and r["logprob"] < 0 for r in rows)


def test_cli_predict_text_keeps_a_row_per_character(capsys, text_model, tmp_path):
    _, folder = text_model
    path = tmp_path / "t.txt"
    path.write_text("ROMEO: a rose\n", encoding="utf-8")
    code, out, _ = run_cli(capsys, "predict", folder, path, "-k", "2")
    rows = out.splitlines()[2:]
    assert code == 0 and len(rows) == len("ROMEO: a rose\n")  # a newline in the text breaks no row
    assert [rows[6][:17].split(None, 1), rows[13][:17].split(None, 1)] == [["6", "' '"], ["13", "'\\n'"]]


def test_cli_generate_events(capsys, session_model):
    _, folder = session_model
    code, out, _ = run_cli(capsys, "generate", folder, "--num-samples", "5", "--seed", "0", "--prompt", "a")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 5
    assert all(line.split()[0] == "a" and set(line.split()) <= set("abcde") for line in lines)


def test_cli_generate_errors(capsys, text_model):
    _, folder = text_model
    code, _, err = run_cli(capsys, "generate", folder, "--top-p", "1.5")
    assert code == 2 and "top-p" in err
    code, _, err = run_cli(capsys, "generate", folder, "--prompt", "ROMEO: 99")
    assert code == 2 and "never saw" in err and len(err.strip().splitlines()) == 1


def test_cli_train_text_with_samples(capsys, tmp_path):
    path = tmp_path / "t.txt"
    path.write_text(TEXT, encoding="utf-8")
    code, _, err = run_cli(capsys, "train", path, "--format", "text", "-m", tmp_path / "m", "--hidden", "16",
                           "--embedding-dim", "8", "--layers", "1", "--epochs", "1", "--threads", "1",
                           "--batch-size", "4", "--chunk", "20", "--eval-every", "3", "--sample-every", "2",
                           "--sample-prompt", "JU")
    assert code == 0, err
    assert "temperature 0.2:\nJU" in err and "temperature 1.2:\nJU" in err
    settings = json.loads((tmp_path / "m" / "config.json").read_text())["settings"]
    # --format text without --preset takes the text preset; flags override it
    assert settings["schedule"] == "wsd" and settings["hidden"] == 16 and settings["eval_every"] == 3


def test_words_model_prompt_and_render(tmp_path):
    path = tmp_path / "w.txt"
    path.write_text("the king, the queen. " * 40, encoding="utf-8")
    model = RNNModel(**{**TINY_SETTINGS, "epochs": 2, "chunk": 10, "batch_size": 4}).fit(
        str(path), format="text", text_tokens="words")
    (s,) = generate(model, "the king,", length=5, temperature=0)
    assert model.vocab_.decode(s.prompt) == ["the", "king,"]  # words split at white space only
    words = render(model, s).split(" ")
    assert words[:2] == ["the", "king,"] and len(words) == 7


# ============================================================================ the numpy step
def simulate(choice, cost, steps):
    """Run ``choice`` for ``steps`` steps, ``cost(step, threads)`` seconds each; the threads of every step."""
    used, threads = [], choice.threads
    for t in range(steps):
        used.append(threads)
        threads = choice.after_step(cost(t, threads))
    return used


def test_thread_choice_follows_the_faster_and_the_machine():
    from seqrnn.generate import ThreadChoice

    def choice(others=0):
        return ThreadChoice(2, others=lambda: others)

    # idle: two threads at 1.5 times the speed are used for almost every step, from the start
    used = simulate(choice(), lambda t, k: 1.0 if k == 1 else 0.66, 2000)
    assert used[:ThreadChoice.WARM + ThreadChoice.PROBE] == [2] * (ThreadChoice.WARM + ThreadChoice.PROBE)
    assert used.count(2) > 0.97 * 2000
    # a noisy machine: two threads are 5% slower than one for 60 steps in every 300 (a neighbour's burst);
    # a probe of one thread then is not enough to move (without the margin: half the steps on one thread)
    used = simulate(choice(), lambda t, k: 1.0 if k == 1 else (1.05 if t % 300 < 60 else 0.66), 3000)
    assert used.count(1) < 0.02 * 3000
    # two threads 8 times as slow (a job others() does not see): after the first block, each probe stops at
    # its first step, and probes grow rare
    used = simulate(choice(), lambda t, k: 1.0 if k == 1 else 8.0, 2000)
    first = ThreadChoice.WARM + ThreadChoice.PROBE
    assert used[:first] == [2] * first and 1 <= used[first:].count(2) <= 8
    # another job running: one thread from the start, and more threads are not even probed
    assert simulate(choice(others=1), lambda t, k: 1.0 if k == 1 else 0.66, 2000).count(2) == 0
    # the machine turns busy half way: back to one thread within a block
    used = simulate(choice(), lambda t, k: 1.0 if k == 1 else (0.66 if t < 1000 else 8.0), 2000)
    assert used[900:1000].count(2) > 90 and used[1000 + ThreadChoice.BLOCK:].count(2) <= 8
    # and idle again: two threads come back after a few probes
    used = simulate(choice(), lambda t, k: 1.0 if k == 1 else (8.0 if t < 1000 else 0.66), 3000)
    assert used[2500:].count(2) > 450
    # one thread allowed: nothing to choose
    assert set(simulate(ThreadChoice(1), lambda t, k: 1.0, 100)) == {1}


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_step_probabilities_are_the_forward_pass_softmax(cell, temperature):
    """The distribution each step samples is softmax(logits / T) of the full forward pass, reserved ids out."""
    from seqrnn.config import ModelConfig
    from seqrnn.generate import RecurrentStep
    from seqrnn.models.rnn_net import RNNNet

    torch.manual_seed(1)
    net = RNNNet(23, ModelConfig(cell=cell, layers=2, hidden=16, embedding_dim=6)).eval()
    x = torch.randint(4, 23, (2, 12))
    sampler = Sampler(23, temperature, seed=0)
    with torch.inference_mode():
        ref, _ = net(x)
        ref[..., [PAD, UNK, BOS, EOS]] = -torch.inf
        ref = torch.softmax(ref / temperature, -1).numpy()
        step = RecurrentStep(net, rows=2)
        _, state = net(x[:, :1])
        step.start(state)
        for t in range(1, 12):
            np.testing.assert_allclose(sampler.probs(step.step(x[:, t].numpy())), ref[:, t], atol=1e-5)


def test_inverse_cdf_draws_the_distribution():
    probs = np.array([0.0, 0.0, 0.0, 0.0, 0.5, 0.3, 0.15, 0.05, 0.0])
    with np.errstate(divide="ignore"):
        logits = np.log(probs).astype(np.float32)[None].repeat(4, 0)
    logits[:, :4] = 5.0  # reserved ids: never drawn whatever their logits
    sampler = Sampler(9, 1.0, seed=3)
    drawn = np.concatenate([sampler.draw(logits) for _ in range(5000)])
    freq = np.bincount(drawn, minlength=9) / len(drawn)
    assert freq[:4].sum() == 0 and freq[8] == 0
    np.testing.assert_allclose(freq, probs, atol=0.01)  # 20,000 draws: 3 standard errors under 0.011
    # a seed gives the same draws; another seed others
    same, other = Sampler(9, 1.0, seed=3), Sampler(9, 1.0, seed=4)
    assert np.array_equal(np.concatenate([same.draw(logits) for _ in range(50)]), drawn[:200])
    assert not np.array_equal(np.concatenate([other.draw(logits) for _ in range(50)]), drawn[:200])
    # temperature: T=0.5 squares the probabilities (renormalised)
    hot = Sampler(9, 0.5, seed=0)
    np.testing.assert_allclose(hot.probs(logits[:1])[0], probs ** 2 / (probs ** 2).sum(), atol=1e-6)


def test_samples_do_not_depend_on_the_blas_threads():
    """One thread or two for numpy's products (large enough for OpenBLAS to share): the same samples."""
    from seqrnn import generate as G
    from seqrnn.config import ModelConfig
    from seqrnn.models.rnn_net import RNNNet

    torch.manual_seed(2)
    net = RNNNet(40, ModelConfig(cell="lstm", layers=2, hidden=512, embedding_dim=8)).eval()
    prompt = np.array([5, 6, 7], dtype=np.int64)
    few, threads = G.FEW_ROWS, torch.get_num_threads()
    outs = []
    try:
        for rows, n in ((4, 1), (0, 2)):  # one thread, then two threads all along
            G.FEW_ROWS = rows
            torch.set_num_threads(n)
            with torch.inference_mode():
                outs.append(G._generate_rnn(net, prompt, 2, 60, Sampler(40, 1.0, seed=5)))
    finally:
        G.FEW_ROWS = few
        torch.set_num_threads(threads)
    assert outs[0] == outs[1]
