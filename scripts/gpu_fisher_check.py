"""GPU check of the Fisher's two paths (issue 16, item 6): ghost norms against the per-example loop at B = 8, 16, 32.

The model is a randomly initialised Llama of SmolLM2-135M's shape (hidden 576, 30 blocks, 9 heads, 3 KV heads,
MLP 1536, vocabulary 49,152) wrapped as the project's recommender (`lwa.recommender.LlmRecommender`, 4,385 items
as in Scientific). The prompts are random token ids whose lengths are drawn from 30 to 142 tokens (the range of the
Office prompts in `results/bench/fisher.json`), sorted by length and cut into batches (`lwa.sequences.length_batches`);
at each B the middle full batch is timed, in float32, the two methods alternating round by round after one warm-up
round. It writes JSON: the device, the torch version, the median seconds of each method at each B, the ratio
loop / ghost, and whether the two methods' Fisher tables agree. No round starts after `--budget-s` (240 s), so the
whole stays under 5 minutes.

    python scripts/gpu_fisher_check.py                            # -> results/bench/gpu_fisher_check.json
    python scripts/gpu_fisher_check.py --out /tmp/gpu.json --repeats 5

Without a CUDA device it exits with status 1 and says so. `check()` is the whole measurement for any config and
device; tests/test_gpu_fisher_check.py runs it on a tiny config on a CPU.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch


def _refuse_without_cuda():
    "Exit with status 1 and one line on stderr unless a CUDA device is present."
    if not torch.cuda.is_available():
        sys.exit(f"gpu_fisher_check: no CUDA device (torch {torch.__version__}, CUDA build {torch.version.cuda}); this "
                 "check times the Fisher on a GPU, so run it on a machine with one. Nothing was written.")


if __name__ == "__main__" and not {"-h", "--help"} & set(sys.argv[1:]):
    _refuse_without_cuda()  # before the slow imports below
from transformers import LlamaConfig  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's lwa, wherever the script is run from
from lwa.core import atomic_write_json, git_info, project_root, provenance  # noqa: E402
from lwa.fisher import fisher_info, fisher_method  # noqa: E402
from lwa.recommender import LlmRecConfig, LlmRecommender  # noqa: E402
from lwa.sequences import PadCollator, length_batches, padding_ratio  # noqa: E402

METHODS = ("ghost", "loop")
AGREE_RTOL = 1e-3  # float32: the largest relative difference over the groups that still counts as agreement
N_ITEMS, LENGTHS, POOL = 4385, (30, 142), 256  # Scientific's catalogue; prompt lengths; prompts sorted into batches


def smollm2_config(**override) -> LlamaConfig:
    "A Llama config of SmolLM2-135M's shape (as its converted config.json); `override` changes fields (a tiny test)."
    shape = dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                 num_key_value_heads=3, head_dim=64, max_position_embeddings=8192, rms_norm_eps=1e-5,
                 rope_parameters=dict(rope_type="default", rope_theta=100000.0), tie_word_embeddings=True,
                 bos_token_id=1, eos_token_id=2, pad_token_id=2)
    return LlamaConfig(**{**shape, **override})


def _prompts(cfg: LlamaConfig, n_items: int, lengths: tuple, pool: int, seed: int) -> list:
    "`pool` rows of random token ids above the special ones, lengths drawn from `lengths`, and random targets."
    rng = np.random.default_rng(seed)
    sizes = rng.integers(lengths[0], lengths[1] + 1, pool)
    low = cfg.pad_token_id + 1
    return [dict(input_ids=rng.integers(low, cfg.vocab_size, k).tolist(), labels=int(rng.integers(n_items)))
            for k in sizes]


def _timed(fn, device) -> tuple:
    "Wall seconds of one call of `fn` (the device synchronised before and after) and its result."
    if device.type == "cuda": torch.cuda.synchronize(device)
    t = time.perf_counter()
    out = fn()
    if device.type == "cuda": torch.cuda.synchronize(device)
    return time.perf_counter() - t, out


def _agreement(a, b) -> dict:
    "The largest relative difference of Fisher table `a` from `b` over the groups, and where it is."
    x, y = a.fisher.to_numpy(), b.fisher.to_numpy()
    rel = np.abs(x - y) / np.maximum(np.abs(y), 1e-30)
    i = int(rel.argmax())
    g = b.iloc[i]
    return dict(max_rel_diff=float(rel[i]), at_group=f"{int(g.layer)}/{g.module}", agree=bool(rel[i] < AGREE_RTOL))


def _time_batch(model, batch: dict, repeats: int, device, deadline: float, seed: int) -> dict:
    "Times of ghost and loop on one batch, alternating round by round after an untimed warm-up round."
    times, tables = {m: [] for m in METHODS}, {}
    for r in range(repeats + 1):
        if time.perf_counter() > deadline: break  # no round starts after the budget
        for m in METHODS:
            dt, tables[m] = _timed(lambda: fisher_info(model, [batch], kind="empirical", method=m, seed=seed), device)
            if r > 0: times[m].append(dt)
    med = {m: float(np.median(v)) if v else None for m, v in times.items()}
    both = med["ghost"] is not None and med["loop"] is not None
    rec = dict(times_s=times, median_s=med, loop_over_ghost=med["loop"] / med["ghost"] if both else None)
    if len(tables) == len(METHODS): rec.update(agreement=_agreement(tables["ghost"], tables["loop"]))
    return rec


def check(cfg: LlamaConfig, device="cuda", batch_sizes=(8, 16, 32), repeats: int = 3, n_items: int = N_ITEMS,
          lengths=LENGTHS, pool: int = POOL, seed: int = 0, budget_s: float = 240.0) -> dict:
    "Median seconds of ghost and loop at each batch size on a random recommender of shape `cfg`, and their agreement."
    if not 1 <= lengths[0] <= lengths[1]: raise ValueError(f"lengths: need 1 <= min <= max, got {lengths!r}")
    if pool < max(batch_sizes): raise ValueError(f"pool: at least the largest batch, {max(batch_sizes)}, got {pool}")
    if repeats < 1: raise ValueError(f"repeats: need at least 1, got {repeats}")
    t0, device = time.perf_counter(), torch.device(device)
    torch.manual_seed(seed)
    drop = ("architectures", "transformers_version", "dtype", "torch_dtype")
    lm = {k: v for k, v in cfg.to_dict().items() if k not in drop}
    model = LlmRecommender(LlmRecConfig(lm=lm, n_items=n_items)).to(device).eval()
    rows = _prompts(cfg, n_items, lengths, pool, seed)
    sizes, collate = [len(r["input_ids"]) for r in rows], PadCollator(cfg.pad_token_id)
    out, complete = [], True
    for B in sorted(batch_sizes):
        full = [b for b in length_batches(sizes, B) if len(b) == B]  # sorted by length, cut into batches of B
        batch = collate([rows[i] for i in full[len(full) // 2]])  # the middle one
        real = batch["attention_mask"].sum(1)  # (B,) real tokens per prompt
        rec = dict(batch=B, mean_tokens=float(real.float().mean()), max_tokens=int(real.max()),
                   padded_len=int(batch["input_ids"].shape[1]), pad_ratio=padding_ratio([batch]))
        rec.update(_time_batch(model, batch, repeats, device, t0 + budget_s, seed))
        out.append(rec)
        complete = all(len(v) == repeats for v in rec["times_s"].values())
        if not complete: break
    return dict(results=out, complete=complete, default_method=fisher_method("auto", device), agree_rtol=AGREE_RTOL,
                n_params=sum(p.numel() for p in model.parameters()), wall_s=time.perf_counter() - t0)


def _line(r: dict) -> str:
    "One printed line for one batch size."
    s = f"B={r['batch']:3d}: " + ", ".join(f"{m} {v:.3f} s" for m, v in r["median_s"].items() if v is not None)
    if r["loop_over_ghost"] is not None: s += f", loop / ghost {r['loop_over_ghost']:.2f}"
    if "agreement" in r: s += f", agree: {r['agreement']['agree']} (max rel diff {r['agreement']['max_rel_diff']:.1e})"
    return s


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=None, help="the JSON file (default: results/bench/gpu_fisher_check.json)")
    p.add_argument("--batch-sizes", default="8,16,32", help="comma-separated batch sizes (default: 8,16,32)")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per method and batch size (default: 3)")
    p.add_argument("--budget-s", type=float, default=240.0, help="no round starts after these seconds (default: 240)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    _refuse_without_cuda()
    t0, git0, dev, cfg = time.time(), git_info(), torch.device("cuda"), smollm2_config()
    doc = check(cfg, dev, [int(b) for b in a.batch_sizes.split(",")], a.repeats, seed=a.seed, budget_s=a.budget_s)
    shape = ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "intermediate_size",
             "vocab_size")
    doc = dict(check="fisher_info ghost against loop on a GPU (scripts/gpu_fisher_check.py)", device=str(dev),
               device_name=torch.cuda.get_device_name(dev), torch=torch.__version__, cuda=torch.version.cuda,
               tf32_matmul=torch.backends.cuda.matmul.allow_tf32, dtype="float32",
               model=dict(kind="random LlmRecommender of SmolLM2-135M's shape", n_items=N_ITEMS,
                          config={k: getattr(cfg, k) for k in shape}),
               prompts=f"random token ids, lengths uniform in {list(LENGTHS)}, {POOL} sorted by length, "
                       "the middle full batch of each B",
               **doc, provenance=provenance(a.seed, None, t0, git0))
    out = Path(a.out) if a.out else project_root() / "results" / "bench" / "gpu_fisher_check.json"
    atomic_write_json(out, doc)
    for r in doc["results"]: print(_line(r))
    print(f"wrote {out}{'' if doc['complete'] else ' (stopped at the time budget)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
