"""Bring your own teacher (issue 18, item 7): a folder holding a saved LlmRecommender is used as it is, and teachers
fine-tuned from a base LM are keyed by a digest of the folder's files, not its name."""
from lwa.config import get_profile
from lwa.data import leave_one_out, synthetic_dataset
from lwa.distill import teacher_for
from lwa.kd import model_digest
from lwa.models import load_teacher, teacher_key


def _profile(teacher):
    return get_profile("tiny", {"model.teacher": str(teacher), "train.epochs": 1.0, "train.max_train_examples": 24})


def test_two_teacher_folders_with_one_name_and_other_weights_are_two_teachers(tmp_path, monkeypatch):
    monkeypatch.setenv("LWA_CACHE", str(tmp_path / "cache"))
    ds = synthetic_dataset(n_users=40, n_items=30, seed=3)
    sp = leave_one_out(ds)
    folders = []
    for seed in (0, 1):  # two base LMs in folders called checkpoint-500: only the weights differ
        lm, tok = load_teacher("tiny", seed=seed)
        folder = tmp_path / f"run{seed}" / "checkpoint-500"
        lm.save_pretrained(folder)
        tok.save_pretrained(folder)
        folders.append(folder)
    keys = [teacher_key(str(f)) for f in folders]
    assert keys[0] != keys[1] and all(k.startswith("checkpoint-500-") for k in keys)
    got = [teacher_for(_profile(f), ds, sp, seed=0, root=tmp_path / "res") for f in folders]
    assert got[0][2] != got[1][2]  # two cached teachers, not one read back for the other
    assert model_digest(got[0][0]) != model_digest(got[1][0])
    again = teacher_for(_profile(folders[0]), ds, sp, seed=0, root=tmp_path / "res")  # found in the cache, not trained
    assert again[2] == got[0][2] and model_digest(again[0]) == model_digest(got[0][0])


def test_a_saved_recommender_is_used_as_the_teacher_as_it_is(tmp_path, monkeypatch):
    monkeypatch.setenv("LWA_CACHE", str(tmp_path / "cache"))
    ds = synthetic_dataset(n_users=40, n_items=30, seed=3)
    sp = leave_one_out(ds)
    rec, tok, _ = teacher_for(_profile("tiny"), ds, sp, seed=0, root=tmp_path / "res")
    mine = tmp_path / "mine" / "checkpoint-500"
    rec.save_pretrained(mine)
    tok.save_pretrained(mine)
    used, _, where = teacher_for(_profile(mine), ds, sp, seed=0, root=tmp_path / "res")
    assert where == mine and model_digest(used) == model_digest(rec)  # no second fine-tuning
    assert not (tmp_path / "cache" / "teachers").exists() or len(list((tmp_path / "cache" / "teachers").iterdir())) == 1
