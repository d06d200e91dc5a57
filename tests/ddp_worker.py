"""One process of the 2-process DDP test (tests/test_scale.py), started by torchrun.

    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/ddp_worker.py DATA OUT

Trains the tiny model on DATA and writes OUT/rank<R>.json: a digest of the
weights after every optimizer step, and the history.
"""

import hashlib
import json
import os
import sys

import torch

import seqrnn.train as training
from seqrnn.models.rnn import RNNModel

SETTINGS = dict(hidden=16, embedding_dim=8, layers=1, epochs=3, batch_size=16, seed=0, threads=1, device="cpu",
                patience=0)


def main(data: str, out: str) -> None:
    digests = []
    make = training.make_optimizer

    def recording_optimizer(params, tc):
        opt = make(params, tc)
        plist = [p for g in opt.param_groups for p in g["params"]]
        step = opt.step

        def step_and_record(*a, **k):
            result = step(*a, **k)
            flat = torch.cat([p.detach().reshape(-1) for p in plist]).numpy().tobytes()
            digests.append(hashlib.sha256(flat).hexdigest())
            return result

        opt.step = step_and_record
        return opt

    training.make_optimizer = recording_optimizer
    model = RNNModel(**SETTINGS).fit(data)
    rank = int(os.environ.get("RANK", "0"))
    import gc

    from torch.nn.parallel import DistributedDataParallel

    gc.collect()
    wrappers = sum(isinstance(o, DistributedDataParallel) for o in gc.get_objects())
    with open(os.path.join(out, f"rank{rank}.json"), "w") as fh:
        json.dump({"digests": digests, "history": model.history_, "training": model.training_summary(),
                   "wrappers_alive": wrappers}, fh)
    from seqrnn import distributed

    distributed.finish()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
