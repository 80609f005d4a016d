"""Robustness: damaged data files, empty or too-short data, mismatched tokenizers, corrupted checkpoints, an unwritable results folder and
wrong-type notebook parameters each fail early with an error that names the file or field and the fix, and leave no partial result behind."""
import ast
import copy
import gzip
import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest
from transformers import TrainerCallback

from conftest import BIN, ROOT, run_papermill
from lwa.config import EXP_PARAMS, ConfigError, DataCfg, DistillCfg, TrainCfg, _type_ok, get_profile
from lwa.core import Run, find_run
from lwa.data import DataError, kcore, leave_one_out, load_data, load_dataset, read_lcrec, read_unisrec, synthetic_dataset
from lwa.distill import distill_unit, teacher_for
from lwa.kd import TeacherCache, distill
from lwa.models import CheckpointError, load_teacher, tiny_tokenizer
from lwa.recommender import LlmRecommender, Prompter, from_lm, last_checkpoint, load_recommender, score_items, train_recommender
from lwa.sequences import train_windows

REFETCH = "copy or download it again"  # the fix every damaged-file error gives


# ---- 1. damaged data files, in each real format -------------------------------------------------------------------------------------------------

def _write(path, data):
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def _lcrec(d, items=None, inter=None):
    d.mkdir(parents=True, exist_ok=True)
    items = items if items is not None else json.dumps({str(i): {"title": f"Item {i}", "brand": "Acme"} for i in range(4)}, indent=1)
    inter = inter if inter is not None else json.dumps({"u1": [0, 1, 2], "u2": [1, 2, 3], "u3": [3, 0, 1]}, indent=1)
    _write(d / "X.item.json", items); _write(d / "X.inter.json", inter)
    return d


@pytest.mark.parametrize("name,items,inter,msg", [
    ("cut mid-record", None, json.dumps({"u1": [0, 1, 2], "u2": [1, 2, 3]}, indent=1)[:-9], r"X\.inter\.json, line \d+: malformed JSON .*" + REFETCH),
    ("invalid UTF-8", b'{"0": {"title": "Pen"},\n "1": {"title": "Caf\xe9 mug"}}', None, r"X\.item\.json, line 2: invalid UTF-8 .*" + REFETCH),
    ("garbled bytes", b"\x1f\x8b\x08\x00\x00garbage", None, r"X\.item\.json, line 1: invalid UTF-8"),
    ("wrong layout", json.dumps([{"title": "Pen"}, {"title": "Ink"}]), None, r"X\.item\.json: expected a JSON object keyed by id, as LC-Rec writes it; check that"),
    ("wrong layout of the interactions", None, json.dumps([[0, 1, 2]]), r"X\.inter\.json: expected a JSON object keyed by id"),
])
def test_damaged_lcrec_files_name_file_and_line(tmp_path, name, items, inter, msg):
    assert read_lcrec(_lcrec(tmp_path / "ok"), "X").n_users == 3  # the undamaged fixture reads
    with pytest.raises(DataError, match=msg): read_lcrec(_lcrec(tmp_path / "bad", items, inter), "X")


def _unisrec(d, **files):
    d.mkdir(parents=True, exist_ok=True)
    head = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    base = {"item2index": "".join(f"A{i}\t{i}\n" for i in range(1, 6)), "user2index": "U0\t0\n",
            "text": "item_id:token\ttext:token_seq\n" + "".join(f"A{i}\tItem {i}. Cat Root Path. Brand.\n" for i in range(1, 6)),
            "train.inter": head + "0\t1\t2\n", "valid.inter": head + "0\t1 2\t3\n", "test.inter": head + "0\t1 2 3\t4\n"}
    for k, v in {**base, **files}.items(): _write(d / f"X.{k}", v)
    return d


@pytest.mark.parametrize("files,msg", [
    ({"item2index": "A1\t1\nA2\t2\nA3\t"}, r"X\.item2index, line 3: expected 'ASIN<TAB>index'; if the line was cut short, .*" + REFETCH),
    ({"test.inter": "user_id:token\titem_id_list:token_seq\titem_id:token\n0\t1 2 3\t"}, r"X\.test\.inter, line 2, field 'item_id': expected one target item id"),
    ({"text": b"item_id:token\ttext:token_seq\nA1\tItem 1\nA2\tCaf\xe9 2\n"}, r"X\.text, line 3: invalid UTF-8 at byte \d+ of the line; .*" + REFETCH),
    ({"train.inter": bytes(range(256))}, r"X\.train\.inter, line 1: header .* is not the expected .*check that this is the right file"),
    ({"valid.inter": "user_id:token\titem_id_list:token_seq\titem_id:token\n0\t1 2\tthree\n"}, r"X\.valid\.inter, line 2, field 'item_id': item ids must be integers, got 'three'"),
    ({"user2index": "U0 0\n"}, r"X\.user2index, line 1: expected 'user<TAB>index'"),
])
def test_damaged_unisrec_files_name_file_line_and_field(tmp_path, files, msg):
    assert read_unisrec(_unisrec(tmp_path / "ok"), "X").users == ["U0"]  # the undamaged fixture reads (user2index maps the raw id)
    with pytest.raises(DataError, match=msg): read_unisrec(_unisrec(tmp_path / "bad", **files), "X")


def _jsonl(rows) -> bytes: return "".join(json.dumps(r) + "\n" for r in rows).encode()


META = [dict(parent_asin=f"I{i}", title=f"Item {i}", main_category="Office") for i in range(6)]  # 2023 layout
REVIEWS = [dict(user_id=f"U{u}", parent_asin=f"I{(u + j) % 6}", timestamp=1_600_000_000_000 + 1000 * j, rating=5.0) for u in range(4) for j in range(4)]
GZ = gzip.compress(_jsonl(REVIEWS), mtime=0)


@pytest.mark.parametrize("name,reviews,meta,msg", [
    ("jsonl cut mid-record", ("Toy.jsonl", _jsonl(REVIEWS)[:-15]), None, r"Toy\.jsonl, line 16: malformed JSON line; if it was cut mid-record, .*" + REFETCH),
    ("gz truncated", ("Toy.jsonl.gz", GZ[: len(GZ) // 2]), None, r"Toy\.jsonl\.gz: truncated or corrupt .*" + REFETCH),
    ("gz garbled", ("Toy.jsonl.gz", GZ[:30] + bytes(24) + GZ[54:]), None, r"Toy\.jsonl\.gz: truncated or corrupt \(Error -3 while decompressing.*" + REFETCH),
    ("not gzip at all", ("Toy.jsonl.gz", _jsonl(REVIEWS)), None, r"Toy\.jsonl\.gz: truncated or corrupt \(Not a gzipped file"),
    ("invalid UTF-8 in gz", ("Toy.jsonl.gz", gzip.compress(_jsonl(REVIEWS[:1]) + b'{"user_id": "\xff"}\n')), None, r"Toy\.jsonl\.gz, line 2: invalid UTF-8"),
    ("wrong column", None, [{**{k: v for k, v in m.items() if k != "parent_asin"}, "ASIN": m["parent_asin"]} for m in META],
     r"meta_Toy\.jsonl\.gz, line 1, field 'parent_asin': missing field; expected one of \['parent_asin', 'asin'\]: check that this is an official"),
    ("2014 literal cut", ("reviews_Toy_5.json", b"{'reviewerID': 'U0', 'asin': 'I0', 'unixReviewTime': 1400000000}\n{'reviewerID': 'U0', 'asin': 'I1', 'unixRev"),
     None, r"reviews_Toy_5\.json, line 2: malformed JSON line"),
])
def test_damaged_amazon_files_name_file_and_line(tmp_path, name, reviews, meta, msg):
    rv_name, rv = reviews or ("Toy.jsonl.gz", GZ)
    mt_name = {"Toy.jsonl.gz": "meta_Toy.jsonl.gz", "Toy.jsonl": "meta_Toy.jsonl", "reviews_Toy_5.json": "meta_Toy.json"}[rv_name]  # as find_amazon_files pairs them
    _write(tmp_path / rv_name, rv); mt = _jsonl(meta or META)
    _write(tmp_path / mt_name, gzip.compress(mt) if mt_name.endswith(".gz") else mt)
    with pytest.raises(DataError, match=msg): load_dataset("amazon:Toy", tmp_path)  # the real entry: find the files, then read them


def test_undamaged_amazon_fixture_reads(tmp_path):
    _write(tmp_path / "Toy.jsonl.gz", GZ); _write(tmp_path / "meta_Toy.jsonl.gz", gzip.compress(_jsonl(META)))
    ds = load_dataset("amazon:Toy", tmp_path)
    assert (ds.n_users, ds.n_interactions) == (4, 16)  # so each failure above is the damage, not the fixture


def test_a_damaged_dataset_fails_the_notebook_without_finishing_a_run(pm):
    r = pm["damaged data"]
    assert r.returncode != 0 and re.search(r"Toy\.jsonl\.gz: truncated or corrupt.*" + REFETCH, r.text), r.log[-3000:]  # shows why otherwise
    runs = list((r.out / "exp_popularity").iterdir())
    assert [sorted(p.name for p in run.iterdir()) for run in runs] == [["config.json"]]  # no metrics, no DONE: nothing reads as finished
    with pytest.raises(FileNotFoundError, match="no finished exp_popularity run"): find_run("exp_popularity", "tiny-", root=r.out)


# ---- 2. empty catalogues and users too short for leave-one-out -----------------------------------------------------------------------------------

def test_an_empty_catalogue_is_an_error(tmp_path):
    untitled = json.dumps({str(i): {"title": " "} for i in range(3)})
    with pytest.raises(DataError, match=r"X\.inter\.json.*the dataset is empty \(0 items, 0 users\); check that the files hold interactions with titled items"):
        read_lcrec(_lcrec(tmp_path / "a", items=untitled, inter=json.dumps({"u1": [0, 1, 2], "u2": [2, 1]})), "X")
    head = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    with pytest.raises(DataError, match=r"the dataset is empty \(5 items, 0 users\)"):
        read_unisrec(_unisrec(tmp_path, **{"train.inter": head, "valid.inter": head, "test.inter": head}), "X")


def test_kcore_that_keeps_nobody_says_what_to_lower():
    with pytest.raises(DataError, match=r"synthetic: no user survives 50-core filtering; lower DataCfg\.kcore"):
        load_data(DataCfg(n_users=40, n_items=30, kcore=50))


def test_users_too_short_for_leave_one_out_are_named_and_kcore_drops_them_on_record(tmp_path):
    items = json.dumps({str(i): {"title": f"Item {i}"} for i in range(5)})
    inter = json.dumps({"a": [0], "b": [1, 2], "c": [0, 1, 2, 3], "d": [3, 2, 1, 0], "e": [1, 3, 0, 2], "f": [4, 4]})
    d = _lcrec(tmp_path, json.dumps({**json.loads(items), "4": {"title": ""}}), inter)
    ds = read_lcrec(d, "X")
    assert ds.users == ["a", "b", "c", "d", "e"] and ds.info["dropped_users"] == 1 and ds.info["dropped_untitled_interactions"] == 2  # f's items are untitled
    with pytest.raises(DataError, match=r"x: 2 of 5 users have fewer than 3 interactions, e\.g\. user 'a' has 1 interaction\(s\) \(first: \['a', 'b'\]\); "
                                        r"leave-one-out needs >= 3\. Apply kcore\(ds, 3\) or more \(DataCfg\.kcore\) first"):
        leave_one_out(ds)
    kept = kcore(ds, 3)  # the documented fix
    assert kept.users == ["c", "d", "e"] and kept.info["dropped_users"] == 3 and kept.info["kcore"] == 3  # f dropped by the reader, a and b by kcore
    assert len(leave_one_out(kept).test) == 3


# ---- 3. a tokenizer that does not belong to the model --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny():
    lm, tok = load_teacher("tiny")
    ds = synthetic_dataset(n_users=60, n_items=30, seed=1); sp = leave_one_out(ds)
    pr = Prompter(tok, ds.items.title.tolist(), 6, 4)
    return SimpleNamespace(lm=lm, tok=tok, ds=ds, sp=sp, pr=pr, rec=from_lm(lm, pr.titles), n=lm.config.vocab_size)


def _bigger(tok, titles):
    "A copy of `tok` that knows every title word as a new token: its ids run past the model's embedding table."
    big = copy.deepcopy(tok); big.add_tokens(sorted({w for t in titles for w in t.split()}))
    return big


def test_prompts_from_a_bigger_tokenizer_fail_before_any_training(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("LWA_CACHE", str(tmp_path / "cache"))
    titles = tiny.ds.items.title.tolist()
    pr = Prompter(_bigger(tiny.tok, titles), titles, 6, 4)
    assert max(max(t) for t in pr.titles) >= tiny.n  # unchecked, torch would index past the table
    msg = re.escape(f"does not fit model LlmRecommender ({tiny.n} token embeddings): build the Prompter with the tokenizer saved beside the model")
    with pytest.raises(ConfigError, match=msg): distill(tiny.rec, tiny.sp.train, pr, "uniform", get_profile("tiny").distill, tmp_path / "unit", k=2)
    with pytest.raises(ConfigError, match=msg): train_recommender(tiny.rec, tiny.sp.train, pr, TrainCfg(), tmp_path / "teacher")
    with pytest.raises(ConfigError, match=msg): score_items(tiny.rec, tiny.sp.test, pr)
    assert list(tmp_path.iterdir()) == []  # no checkpoint, no teacher cache


def test_a_teacher_folder_whose_tokenizer_does_not_fit_is_refused_by_teacher_for(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("LWA_CACHE", str(tmp_path / "cache"))
    run = Run("exp_teacher", f"tiny-{tiny.ds.name}-tiny-seed0", {"teacher": "planted"}, root=tmp_path / "res")
    tdir = run.path / "teacher"; tiny.rec.save_pretrained(tdir); _bigger(tiny.tok, tiny.ds.items.title.tolist()).save_pretrained(tdir)
    run.finish({})
    with pytest.raises(ConfigError, match=rf"tokenizer {re.escape(str(tdir))} \(\d+ tokens\) does not fit model {re.escape(str(tdir))} \({tiny.n} token"):
        teacher_for(get_profile("tiny"), tiny.ds, tiny.sp, seed=0, root=tmp_path / "res")
    assert not (tmp_path / "cache").exists()  # no teacher trained and cached in its place


def test_a_saved_teacher_is_checked_against_the_tokenizer_of_the_prompts(tiny, tmp_path):
    tiny.rec.save_pretrained(tmp_path / "t"); tiny.tok.save_pretrained(tmp_path / "t")
    rec, saved = load_recommender(tmp_path / "t", tiny.tok)  # the right tokenizer passes
    assert saved.get_vocab() == tiny.tok.get_vocab() and rec.config.n_items == tiny.ds.n_items
    other = tiny_tokenizer(400)  # smaller, so every id fits: only the comparison catches it
    with pytest.raises(ConfigError, match=rf"tokenizer .*\(400 tokens\) differs from {re.escape(str(tmp_path / 't'))} \({len(tiny.tok)} tokens\), "
                                          r"the one saved with model .*build the Prompter with the tokenizer saved beside the model"):
        load_recommender(tmp_path / "t", other)
    tiny.rec.save_pretrained(tmp_path / "bare")
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(tmp_path / 'bare'))}: no readable tokenizer beside the model.*save the one it was trained with"):
        load_recommender(tmp_path / "bare")


def test_a_teacher_cache_of_other_prompts_is_never_read(tiny, tmp_path):
    w = train_windows(tiny.sp, tiny.pr.kept, 16, 0)
    other = Prompter(tiny_tokenizer(400), tiny.ds.items.title.tolist(), 6, 4)  # fits the embeddings, but other ids
    mine, theirs = TeacherCache.build(tiny.rec, w, tiny.pr, tmp_path / "c"), TeacherCache.build(tiny.rec, w, other, tmp_path / "c")
    assert mine.path != theirs.path and len(mine) == len(theirs) == w.n_targets  # keyed by the prompts' token ids
    with pytest.raises(ConfigError, match=rf"cache: {re.escape(str(theirs.path))} holds the teacher's signals for other prompts .*pass cache=None"):
        distill(tiny.rec, w, tiny.pr, "uniform", DistillCfg(max_train_examples=16), tmp_path / "u", k=2, cache=theirs)
    assert not (tmp_path / "u").exists()


# ---- 4. corrupted checkpoints --------------------------------------------------------------------------------------------------------------------

def _damage(f: Path, how: str):
    b = f.read_bytes()
    f.write_bytes(b[: len(b) // 2] if how == "truncated" else b[:8] + b"{garbled" + b[16:])


@pytest.mark.parametrize("how", ["truncated", "garbled header"])
def test_a_corrupted_teacher_folder_is_named_with_the_fix(tiny, tmp_path, monkeypatch, how):
    tiny.lm.save_pretrained(tmp_path / "lm"); tiny.tok.save_pretrained(tmp_path / "lm"); _damage(tmp_path / "lm" / "model.safetensors", how)
    with pytest.raises(CheckpointError, match=rf"corrupted checkpoint in {re.escape(str(tmp_path / 'lm'))}: .*delete that folder"):
        load_teacher(str(tmp_path / "lm"))
    run = Run("exp_teacher", f"tiny-{tiny.ds.name}-tiny-seed0", {"teacher": "planted"}, root=tmp_path / "res")
    tdir = run.path / "teacher"; tiny.rec.save_pretrained(tdir); tiny.tok.save_pretrained(tdir); run.finish({}); _damage(tdir / "model.safetensors", how)
    msg = rf"corrupted checkpoint in {re.escape(str(tdir))}: .*delete that folder and run again"
    with pytest.raises(CheckpointError, match=msg): LlmRecommender.from_pretrained(tdir)
    monkeypatch.setenv("LWA_CACHE", str(tmp_path / "cache"))
    with pytest.raises(CheckpointError, match=msg): teacher_for(get_profile("tiny"), tiny.ds, tiny.sp, seed=0, root=tmp_path / "res")


class _Killed(Exception): pass


class _KillAfterSave(TrainerCallback):
    "Stop training right after the first checkpoint, as a kill would."
    def on_save(self, args, state, control, **kw): raise _Killed()


@pytest.mark.parametrize("damaged", ["model.safetensors", "optimizer.pt", "trainer_state.json"])
def test_a_corrupted_trainer_checkpoint_stops_the_resume_and_nothing_finishes(tiny, tmp_path, monkeypatch, damaged):
    monkeypatch.setenv("LWA_CACHE", str(tmp_path / "cache"))
    cfg = get_profile("tiny", {"distill.max_train_examples": 32, "distill.batch_size": 8, "distill.epochs": 1.0})
    unit = lambda **kw: distill_unit(cfg, tiny.ds, tiny.sp, tiny.rec, tiny.pr, "uniform", 0, tiny.sp.test.take(range(20)), tiny.sp.valid.take(range(10)),
                                     root=tmp_path / "res", save_steps=2, **kw)
    with pytest.raises(_Killed): unit(callbacks=[_KillAfterSave()])
    (folder,) = (tmp_path / "res" / "distill").iterdir()
    ck = Path(last_checkpoint(folder / "checkpoints")); f = ck / damaged
    f.write_bytes(f.read_bytes()[: max(f.stat().st_size // 2, 1)])  # a kill or a full disk in mid-write
    with pytest.raises(CheckpointError, match=rf"damaged training checkpoint {re.escape(str(ck))} \({re.escape(damaged)}: .*delete that folder"):
        unit()
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoints", "config.json"]  # no metrics, no per-user results, no DONE
    shutil.rmtree(ck)  # the fix the message gives: the unit then trains from the start and finishes
    met, per = unit()
    assert (folder / "DONE").is_file() and met["run_id"] == folder.name and len(per) == 20


# ---- 5 and 6. notebooks: an unwritable results folder and parameters of the wrong type -----------------------------------------------------------

def _papermill(tmp, nb, out_dir, *args, env=None):
    tmp.mkdir(parents=True, exist_ok=True)
    figs = [] if nb == "exp_popularity" else ["-p", "fig_dir", str(tmp / "fig")]  # exp_popularity draws no figure
    cmd = [str(BIN / "papermill"), str(ROOT / "nbs" / f"{nb}.ipynb"), str(tmp / "out.ipynb"), "-p", "out_dir", str(out_dir), *figs, *args]
    env = dict(os.environ, OMP_NUM_THREADS="1", LWA_CACHE=str(tmp / "cache"), **(env or {}))
    r = run_papermill(cmd, cwd=ROOT, env=env, timeout=300)  # three run at a time: their kernels can race for a port
    nb_text = (tmp / "out.ipynb").read_text() if (tmp / "out.ipynb").is_file() else ""
    return SimpleNamespace(returncode=r.returncode, text=r.stdout + r.stderr + nb_text, log=r.stdout + r.stderr, out=Path(out_dir), tmp=tmp)


@pytest.fixture(scope="module")
def pm(tmp_path_factory):
    "Every papermill run of this file, three at a time: each must stop in its first cells, so the whole set takes seconds."
    t = tmp_path_factory.mktemp("pm")
    blocker = t / "ro" / "file"; blocker.parent.mkdir(); blocker.write_text("x\n")
    if os.geteuid() == 0: unwritable = blocker / "results"  # root writes through chmod; nobody can create a folder under a regular file
    else: unwritable = t / "ro" / "locked"; unwritable.mkdir(); unwritable.chmod(0o500)
    data = t / "data"; data.mkdir()
    _write(data / "Toy.jsonl.gz", GZ[: len(GZ) // 2]); _write(data / "meta_Toy.jsonl.gz", gzip.compress(_jsonl(META)))
    jobs = {
        "unwritable": (t / "unwritable", "exp_popularity", unwritable, []),
        "damaged data": (t / "dd", "exp_popularity", t / "dd" / "res", ["-p", "dataset", "amazon:Toy"], dict(LWA_DATA_DIR=str(data))),
        "exp_distill": (t / "distill", "exp_distill", t / "distill" / "res", ["-p", "seeds", "3", "-p", "methods", "fisher", "-p", "student_layers", "two"]),
        "exp_teacher": (t / "teacher", "exp_teacher", t / "teacher" / "res", ["-p", "n_verbal", "many"]),
        "exp_fisher": (t / "fisher", "exp_fisher", t / "fisher" / "res", ["-p", "n_fisher", "2.5"]),
        "exp_weights": (t / "weights", "exp_weights", t / "weights" / "res", ["-p", "strategies", "fisher"]),
    }
    with ThreadPoolExecutor(3) as pool:
        futs = {k: pool.submit(_papermill, tmp, nb, out, *args, env=(rest[0] if rest else None)) for k, (tmp, nb, out, args, *rest) in jobs.items()}
        res = {k: f.result() for k, f in futs.items()}
    res["unwritable"].blocker, res["unwritable"].root = blocker, t / "ro"
    yield res
    if os.geteuid() != 0: unwritable.chmod(0o700)


def test_an_unwritable_results_folder_fails_the_notebook_naming_it_and_writes_nothing(pm):
    r = pm["unwritable"]
    assert r.returncode != 0
    assert re.search(rf"cannot write {re.escape(str(r.out))}/exp_popularity/[^:]+/config\.json: [^;]+; choose a writable results folder", r.text)
    assert r.blocker.read_text() == "x\n" and set(r.root.rglob("*")) == {r.blocker} | ({r.out} if os.geteuid() else set())  # nothing was written


@pytest.mark.parametrize("nb,expect", [
    ("exp_distill", ["parameter 'student_layers' must be int | None, got 'two' (str)", "parameter 'methods' must be list[str] | None, got 'fisher' (str)",
                     "parameter 'seeds' must be list[int] | None, got 3 (int)", 'Fix: pass a list as YAML with -y, e.g. -y "methods: [...]"']),
    ("exp_teacher", ["exp_teacher: parameter 'n_verbal' must be int, got 'many' (str). Fix: pass e.g. -p n_verbal <int>"]),
    ("exp_fisher", ["exp_fisher: parameter 'n_fisher' must be int, got 2.5 (float)"]),
    ("exp_weights", ["exp_weights: parameter 'strategies' must be list[str], got 'fisher' (str)", '-y "strategies: [...]"']),
])
def test_a_wrong_parameter_type_fails_first_and_leaves_no_results_folder(pm, nb, expect):
    r = pm[nb]
    assert r.returncode != 0
    for e in expect: assert e in r.text, e
    assert "no finished exp_teacher run" not in r.text  # exp_fisher: the parameter is checked before it looks for its teacher
    assert not r.out.exists() and not (r.tmp / "fig").exists() and not (r.tmp / "cache").exists()  # nothing computed, nothing written


def _parameters(nb: Path) -> dict:
    "The literal defaults of a notebook's parameters cell."
    cells = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
    (src,) = ["".join(c["source"]) for c in cells if "parameters" in c["metadata"].get("tags", [])]
    return {n.targets[0].id: ast.literal_eval(n.value) for n in ast.parse(src).body}


@pytest.mark.parametrize("nb", sorted(p.stem for p in (ROOT / "nbs").glob("exp_*.ipynb")))
def test_every_experiment_parameter_has_a_checked_type(nb):
    params, types = _parameters(ROOT / "nbs" / f"{nb}.ipynb"), EXP_PARAMS.get(nb, {})
    assert set(params) == set(types), f"lwa.config.EXP_PARAMS[{nb!r}] must list exactly the parameters of nbs/{nb}.ipynb: differs in {set(params) ^ set(types)}"
    assert all(_type_ok(v, types[k]) for k, v in params.items()), f"{nb}: a default does not have its EXP_PARAMS type"
    code = [c for c in json.loads((ROOT / "nbs" / f"{nb}.ipynb").read_text())["cells"] if c["cell_type"] == "code"]
    first = next(i for i, c in enumerate(code) if "parameters" in c["metadata"].get("tags", [])) + 1
    assert f'check_params("{nb}", globals())' in "".join(code[first]["source"]), f"nbs/{nb}.ipynb: call check_params in the cell after the parameters"


# ---- 7. the readers' anomaly classes (issue 17): an error naming file, line, field and fix, or a counted repair ----------------------------------

SCI = "amazon18_scientific_unisrec"
HEAD = "user_id:token\titem_id_list:token_seq\titem_id:token\n"


def _sci_copy(tmp_path, damage=None):
    "A copy of the real Scientific folder, `damage(name -> list of lines)` applied to its files."
    from conftest import DATA
    if not (DATA / SCI).is_dir(): pytest.skip(f"real data absent: {DATA / SCI} not found")
    d = tmp_path / SCI
    shutil.copytree(DATA / SCI, d)
    for f in d.iterdir(): f.chmod(0o644)
    for name, fix in (damage or {}).items():
        lines = (d / f"Scientific.{name}").read_text().splitlines(keepends=True)
        (d / f"Scientific.{name}").write_text("".join(fix(lines)))
    return tmp_path


def _cli(*argv):
    "Run the `lwa` command line in a subprocess: (exit code, stdout, stderr)."
    r = subprocess.run([str(BIN / "lwa"), *argv], capture_output=True, text=True, cwd=ROOT, timeout=120)
    return r.returncode, r.stdout, r.stderr


def test_unisrec_rows_that_would_shorten_a_sequence_are_errors(tmp_path):
    user0 = lambda lines: [l for l in lines if not l.startswith("0\t")]  # user 0's rows removed
    cases = {"valid row missing": ({"valid.inter": user0}, r"Scientific\.valid\.inter, field 'user_id': user '0' \(1 users in all\) has rows in"),
             "test row missing": ({"test.inter": user0}, r"Scientific\.test\.inter, field 'user_id': user '0'"),
             "only in train": ({"valid.inter": user0, "test.inter": user0}, r"Scientific\.valid\.inter, field 'user_id': user '0' .*\['train'\]"),
             "a train row removed": ({"train.inter": lambda l: l[:2] + l[3:]}, r"Scientific\.train\.inter, line \d+, field 'item_id_list': user '0': no training row")}
    for what, (damage, msg) in cases.items():
        with pytest.raises(DataError, match=msg): load_dataset("scientific", _sci_copy(tmp_path / what.replace(" ", "_"), damage))
    oldest_first = lambda lines: lines[:1] + lines[1:][::-1]  # the training rows in the other order: the same data
    ds = load_dataset("scientific", _sci_copy(tmp_path / "reordered", {"train.inter": oldest_first}))
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (8442, 4385, 59427)
    code, out, err = _cli("stats", "scientific", "--data-dir", str(_sci_copy(tmp_path / "cli", {"train.inter": lambda l: l[:2] + l[3:]})))
    assert code == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err and "Scientific.train.inter, line" in err


def test_duplicate_keys_are_errors_naming_both_lines(tmp_path):
    texts = "item_id:token\ttext:token_seq\n" + "".join(f"A{i}\tItem {i}. Cat Root Path. Brand {i}.\n" for i in range(1, 6))
    for files, msg in [({"text": texts + "A3\tOther. Cat Root Path. B.\n"}, r"X\.text, line 7, field 'item_id:token': item_id:token 'A3' appears twice \(first at line 4\)"),
                       ({"item2index": "A1\t1\nA2\t2\nA3\t3\nA4\t4\nA5\t5\nA6\t3\n"}, r"X\.item2index, line 6, field 'index': index '3' appears twice \(first at line 3\)"),
                       ({"item2index": "A1\t1\nA2\t2\nA3\t3\nA4\t4\nA5\t5\nA1\t6\n"}, r"X\.item2index, line 6, field 'ASIN': ASIN 'A1' appears twice \(first at line 1\)"),
                       ({"user2index": "U0\t0\nU9\t0\n"}, r"X\.user2index, line 2, field 'index': index '0' appears twice")]:
        with pytest.raises(DataError, match=msg): read_unisrec(_unisrec(tmp_path / str(len(msg)), **files), "X")
    d = _lcrec(tmp_path / "lc")
    for name, text, msg in [("item_index.json", '{"B0": 0,\n "B1": 1,\n "B2": 1,\n "B3": 3}', r"item_index\.json, line 3, field 'B2': index 1 is given to both 'B1' and 'B2'"),
                            ("user_index.json", '{"R1": "u1",\n "R2": "u2",\n "R3": "u3",\n "R1": "u9"}', r"user_index\.json, line 4, field 'R1': key 'R1' appears twice"),
                            ("X.item.json", '{"0": {"title": "Pen"},\n "1": {"title": "Ink",\n "title": "Cap"}}', r"X\.item\.json, line 3, field 'title': key 'title' appears twice")]:
        (d / name).write_text(text)
        with pytest.raises(DataError, match=msg): read_lcrec(d, "X")
        (d / name).unlink()
    _write(tmp_path / "Toy.jsonl", _jsonl(REVIEWS[:3]) + b'{"user_id": "U9", "parent_asin": "I1", "timestamp": 1600000000000, "parent_asin": "I2"}\n')
    _write(tmp_path / "meta_Toy.jsonl", _jsonl(META))
    with pytest.raises(DataError, match=r"Toy\.jsonl, line 4, field 'parent_asin': key 'parent_asin' appears twice in one object"):
        load_dataset("amazon:Toy", tmp_path)


@pytest.mark.parametrize("title", [float("nan"), 42, {"en": "Pen"}, True, ["Pen"]])
def test_titles_that_are_not_text_are_errors(tmp_path, title):
    meta = [dict(m, title=title) if m["parent_asin"] == "I2" else m for m in META]
    _write(tmp_path / "Toy.jsonl", _jsonl(REVIEWS)); _write(tmp_path / "meta_Toy.jsonl", _jsonl(meta))
    with pytest.raises(DataError, match=rf"meta_Toy\.jsonl, line 3, field 'title': expected text, got {type(title).__name__}"):
        load_dataset("amazon:Toy", tmp_path)
    items = json.dumps({str(i): {"title": title if i == 2 else f"Item {i}", "brand": "Acme"} for i in range(4)}, indent=1)
    with pytest.raises(DataError, match=r"X\.item\.json, line \d+, field 'title': expected text"): read_lcrec(_lcrec(tmp_path / "lc", items), "X")
    brands = json.dumps({str(i): {"title": f"Item {i}", "brand": title if i == 1 else "Acme"} for i in range(4)}, indent=1)
    if not isinstance(title, list):
        with pytest.raises(DataError, match=r"X\.item\.json, line \d+, field 'brand': expected text"): read_lcrec(_lcrec(tmp_path / "lb", brands), "X")


def test_text_repairs_are_counted_and_shown(tmp_path):
    items = {"0": {"title": "AT&amp;T Phone", "brand": "AT&amp;T"}, "1": {"title": "Pen\x07 set\n blue"}, "2": {"title": "x" * 5_000_000},
             "3": {"title": "Ink"}}
    d = _lcrec(tmp_path / "lc", json.dumps(items))
    ds = read_lcrec(d, "X")
    assert ds.items.title[:2].tolist() == ["AT&T Phone", "Pen  set  blue"] and ds.items.brand[0] == "AT&T" and len(ds.items.title[2]) == 1000
    assert {k: ds.info["repairs"][k] for k in ("html_entities", "control_chars", "long_titles")} == dict(html_entities=2, control_chars=1, long_titles=1)
    raw = read_lcrec(d, "X", clean_text=False)  # counted only, as the committed datasets are read
    assert raw.items.title[0] == "AT&amp;T Phone" and raw.info["repairs"]["html_entities"] == 2
    from lwa.cli import _repairs
    assert _repairs(ds.info)["html_entities"][0] == 2 and "[counted, not applied" in _repairs(raw.info)["html_entities"][1]


def test_duplicate_interactions_follow_the_policy_and_are_counted(tmp_path):
    rows = REVIEWS + REVIEWS[:2] + [dict(REVIEWS[0], timestamp=REVIEWS[0]["timestamp"] + 9_000_000, rating=1.0)]  # 2 identical lines, 1 repeated pair
    _write(tmp_path / "Toy.jsonl", _jsonl(rows)); _write(tmp_path / "meta_Toy.jsonl", _jsonl(META))
    ds = load_dataset("amazon:Toy", tmp_path)
    assert ds.n_interactions == 16 and ds.info["repairs"]["duplicate_lines"] == 2 and ds.info["repairs"]["duplicate_pairs"] == 1
    from lwa.readers import find_amazon_files, read_amazon
    files = find_amazon_files(tmp_path, "Toy")
    assert read_amazon(*files, duplicates="all").n_interactions == 17
    assert read_amazon(*files, duplicates="last").ratings[0].tolist()[-1] == 1.0
    with pytest.raises(DataError, match=r"Toy\.jsonl, field 'duplicates': user 'U0' has a repeated item"): read_amazon(*files, duplicates="error")
    d = _lcrec(tmp_path / "lc", inter=json.dumps({"u1": [0, 1, 0, 2], "u2": [1, 2, 3]}))
    assert read_lcrec(d, "X").seqs[0].tolist() == [0, 1, 2] and read_lcrec(d, "X").info["repairs"]["duplicate_pairs"] == 1


def test_times_and_ratings(tmp_path):
    def read(**change):
        _write(tmp_path / "Toy.jsonl", _jsonl([dict(REVIEWS[0], **change)] + REVIEWS[1:])); _write(tmp_path / "meta_Toy.jsonl", _jsonl(META))
        return load_dataset("amazon:Toy", tmp_path)
    ms, s = read(), read(timestamp=1_600_000_000)  # the unit follows the value, not the key
    assert ms.times[0][0] == s.times[0][0] == 1_600_000_000 and ms.info["repairs"]["ms_times"] == 16 and s.info["repairs"]["ms_times"] == 15
    assert read(rating=0).ratings[0][0] == 0.0  # 0 stays 0, not NaN
    for bad, field in [(dict(timestamp=float("nan")), "timestamp"), (dict(timestamp=True), "timestamp"), (dict(timestamp=-5), "timestamp"),
                       (dict(timestamp=4_102_444_800_000), "timestamp"), (dict(timestamp="1600000000"), "timestamp"),
                       (dict(rating="five"), "rating"), (dict(rating=10**400), "rating"), (dict(rating=7), "rating"), (dict(timestamp=10**400), "timestamp")]:
        with pytest.raises(DataError, match=rf"Toy\.jsonl, line 1, field '{field}'"): read(**bad)


def test_no_input_gives_a_bare_exception(tmp_path):
    cases = {"huge integer": b'{"user_id": "U0", "parent_asin": "I0", "timestamp": ' + b"9" * 5000 + b"}\n",
             "deep nesting": b"[" * 100_000 + b"]" * 100_000 + b"\n", "not JSON": b"\x00\x01garbage\n"}
    for what, data in cases.items():
        d = tmp_path / what.replace(" ", "_"); d.mkdir()
        _write(d / "Toy.jsonl", data); _write(d / "meta_Toy.jsonl", _jsonl(META))
        with pytest.raises(DataError, match=r"Toy\.jsonl, line 1"): load_dataset("amazon:Toy", d)
    (tmp_path / "unreadable").mkdir()
    _write(tmp_path / "unreadable" / "meta_Toy.jsonl", _jsonl(META)); (tmp_path / "unreadable" / "Toy.jsonl").mkdir()
    from lwa.readers import read_amazon
    with pytest.raises(DataError, match=r"Toy\.jsonl: is a folder, not a file"):
        read_amazon(tmp_path / "unreadable" / "Toy.jsonl", tmp_path / "unreadable" / "meta_Toy.jsonl")
    code, out, err = _cli("stats", "amazon:Toy", "--data-dir", str(tmp_path / "deep_nesting"))
    assert code == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err and "Toy.jsonl, line 1" in err


def test_misleading_messages_now_blame_the_right_file(tmp_path):
    _write(tmp_path / "Toy.jsonl", b"\xef\xbb\xbf" + _jsonl(REVIEWS)); _write(tmp_path / "meta_Toy.jsonl", _jsonl(META))
    assert load_dataset("amazon:Toy", tmp_path).info["repairs"]["bom"] == 1  # a BOM is read, and counted
    _write(tmp_path / "meta_Toy.jsonl", b"")
    with pytest.raises(DataError, match=r"meta_Toy\.jsonl: the metadata file holds no records"): load_dataset("amazon:Toy", tmp_path)
    d = _lcrec(tmp_path / "lc")
    (d / "X.item.json").unlink(); (d / "X.item.json").mkdir()
    with pytest.raises(DataError, match=r"X\.item\.json: is a folder, not a file"): read_lcrec(d, "X")
    (d / "X.item.json").rmdir(); (d / "X.item.json").symlink_to(d / "X.item.json")
    with pytest.raises(DataError, match=r"X\.item\.json: cannot be opened \(a symbolic-link loop\)"): read_lcrec(d, "X")
    with pytest.raises(DataError, match=r"no Amazon review \+ meta files for category 'Books'; expected one of .*reviews_Books_5\.json\.gz"):
        load_dataset("amazon:Books", tmp_path)
    with pytest.raises(DataError, match=r"X\.test\.inter, line 2, field 'item_id': item id 9 is not in the item2index file"):
        read_unisrec(_unisrec(tmp_path / "u", **{"test.inter": HEAD + "0\t1 2 3\t9\n"}), "X")
    with pytest.raises(DataError, match=r"X\.valid\.inter, line 2, field 'item_id_list': user '0': the history"):
        read_unisrec(_unisrec(tmp_path / "v", **{"valid.inter": HEAD + "0\t1 3\t4\n"}), "X")
