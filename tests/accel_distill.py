"Distil a tiny student under however many processes this is launched with (plain python, or `accelerate launch --cpu --num_processes 2`)."
import os, sys
from pathlib import Path

import torch
import torch.nn.functional as F

from lwa.config import DistillCfg
from lwa.core import atomic_write_json
from lwa.data import leave_one_out, synthetic_dataset
from lwa.kd import distill
from lwa.models import load_teacher
from lwa.recommender import PadCollator, Prompter, from_lm

out = Path(sys.argv[1])
world, rank = int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("RANK", 0))  # set by the launcher
syn = synthetic_dataset(n_users=150, n_items=60, seed=0); sp = leave_one_out(syn)
lm, tok = load_teacher("tiny", seed=0)
pr = Prompter(tok, syn.items.title.tolist(), max_title_tokens=6, max_history=5)
teacher = from_lm(lm, pr.titles)
cfg = DistillCfg(epochs=1.0, batch_size=16 // world, lr=3e-3, max_train_examples=64)  # the same global batch of 16
stu, log, plan = distill(teacher, sp.train, pr, "uniform", cfg, out / f"run{world}", k=2, cache_root=out / "cache", save_steps=10**6,
                         logging_steps=1, checkpoint_s=0.0 if rank == 0 else 1e9)  # only process 0's timer fires: all must save
batch = PadCollator(pr.pad_id)([dict(input_ids=pr(h), labels=int(t)) for h, t in zip(sp.valid.histories[:8], sp.valid.targets[:8])])
with torch.no_grad():
    labels = batch.pop("labels")
    loss = F.cross_entropy(stu(**batch).logits, labels).item()
atomic_write_json(out / f"ws{world}-rank{rank}.json",
                  dict(loss=loss, weights=[p.detach().flatten()[:50].tolist() for p in stu.parameters()][:6],
                       train_losses=[r["loss"] for r in log if "loss" in r], world=world))
