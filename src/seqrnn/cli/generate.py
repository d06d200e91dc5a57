"""``seqrnn generate``: sample new text, or new event sequences, from a trained model."""

from __future__ import annotations

import json
import sys

from .args import add_threads, add_output, emit


def add_parser(sub) -> None:
    p = sub.add_parser(
        "generate", help="sample new text or event sequences from a model",
        description="Sample continuations of a prompt, one step per new token with the state carried. "
                    "Text models print text; event models print one sequence of space-separated events "
                    "per line, each stopping at the end of a session for models of sessions.")
    p.add_argument("model_dir", metavar="MODEL", help="a model directory written by seqrnn train")
    p.add_argument("--prompt", default="",
                   help="start from this: text for a character model, else tokens separated by spaces "
                        "(event ids, words); default: the beginning of a sequence")
    p.add_argument("--length", type=int, default=200, help="most new tokens per sample (default %(default)s)")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="below 1 more likely tokens, above 1 more varied; 0: greedy (default %(default)s)")
    p.add_argument("--top-k", type=int, default=0, help="draw only among the k most likely tokens (0: all)")
    p.add_argument("--top-p", type=float, default=1.0,
                   help="draw only among the most likely tokens that make up this probability (default 1: all)")
    p.add_argument("--num-samples", "-n", type=int, default=1, help="samples to draw (default %(default)s)")
    p.add_argument("--seed", type=int, help="random seed: the same seed gives the same samples")
    p.add_argument("--no-prompt", action="store_true", help="print only the generated tokens, not the prompt")
    add_output(p, "the samples",
               json_help="one JSON object per sample: tokens, text, whether it ended, its log-probability")
    add_threads(p, more="; the most a step uses: up to 4 samples step on one thread or on N, whichever "
                        "is faster on the machine as it is now (docs/text.md)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..generate import generate, render
    from ..models.base import load_next_event_model as load

    model = load(args.model_dir)
    samples = generate(model, args.prompt, length=args.length, temperature=args.temperature, top_k=args.top_k,
                       top_p=args.top_p, num_samples=args.num_samples, seed=args.seed)
    keep = not args.no_prompt
    if args.json:
        lines = [json.dumps({"sample": i + 1, "text": render(model, s, keep),
                             "tokens": model.vocab_.decode((s.prompt if keep else []) + s.ids),
                             "ended": s.ended, "logprob": round(sum(s.logprob), 4)})
                 for i, s in enumerate(samples)]
        emit(args, "\n".join(lines))
    elif model.format_ == "text" and model.text_tokens_ == "chars":
        many = len(samples) > 1
        emit(args, "\n".join((f"--- sample {i + 1} ---\n" if many else "") + render(model, s, keep)
                             for i, s in enumerate(samples)))
    else:
        emit(args, "\n".join(render(model, s, keep) for s in samples))
    if not args.json and model.format_ == "sessions":
        ended = sum(s.ended for s in samples)
        if ended < len(samples):
            print(f"{len(samples) - ended} of {len(samples)} samples reached --length {args.length} "
                  "before the end of a session", file=sys.stderr)
    return 0
