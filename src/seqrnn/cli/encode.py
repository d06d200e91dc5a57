"""``seqrnn encode``: sequences of any input format to memory-mapped shards, for training larger than memory."""

from __future__ import annotations

import json
import sys

from .args import add_input


def add_parser(sub) -> None:
    p = sub.add_parser("encode", help="encode sequences once into memory-mapped shards (seqrnn train DIR reads them)",
                       description="Read the input (any format, one file at a time) and write a folder of shards: "
                                   "integer tokens and offsets, memory-mapped by seqrnn train DIR, which reads them "
                                   "shard by shard in a new random order each epoch, with memory flat as the corpus "
                                   "grows. The held-out part is split off here (--validation-split, --seed).")
    add_input(p, "sessions")
    p.add_argument("--output", "-o", required=True, metavar="DIR", help="the shards folder (new or empty)")
    p.add_argument("--shard-events", type=int, default=1 << 22, metavar="N",
                   help="events per shard (default %(default)s)")
    p.add_argument("--validation-split", type=float, default=0.1,
                   help="fraction held out for validation: sessions at random, the end of streams (default 0.1)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the held-out split (default 0)")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    import os

    from ..data.shards import encode
    from ..errors import InputError
    from ..parse.folder import is_parsed_folder

    for path in args.inputs:
        if os.path.isdir(path) and is_parsed_folder(path):
            name = "sessions" if os.path.exists(os.path.join(path, "sessions")) else "events"
            raise InputError(f"a parsed folder: encode its {name} file ({os.path.join(path, name)}, "
                             f"--format {'sessions' if name == 'sessions' else 'stream'}), or train on the folder",
                             path)

    meta = encode(args.inputs, args.output, args.format, text_tokens=args.tokens or "chars",
                  separate_files=args.separate_files, max_length=args.max_length,
                  validation_split=args.validation_split, seed=args.seed, shard_events=args.shard_events)
    summary = {"output": args.output, "tokens": len(meta["tokens"]), "sequences": meta["sequences"],
               "events": meta["events"], "shards": {p: len(v) for p, v in meta["shards"].items()}}
    if not args.quiet:
        print(json.dumps(summary), file=sys.stderr)
    return 0
