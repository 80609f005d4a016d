"Bad input gets a clear error naming the file, line and field, and nothing is half-loaded or half-written."
import json

import pytest

from lwa.config import ConfigError, get_profile
from lwa.core import Run, RunFinishedError, atomic_write_json
from lwa.data import DataError, leave_one_out, load_dataset, read_amazon, read_lcrec, read_unisrec, sample_candidates, synthetic_dataset


def _lcrec(tmp_path, items, inter, name="X"):
    (tmp_path / f"{name}.item.json").write_text(items if isinstance(items, str) else json.dumps(items))
    (tmp_path / f"{name}.inter.json").write_text(inter if isinstance(inter, str) else json.dumps(inter))
    return tmp_path


@pytest.mark.parametrize("items,inter,msg", [
    ({"0": {"title": "Pen"}}, '{"0": [0,\n', "X.inter.json, line 2: malformed JSON"),
    ({"0": {"name": "Pen"}}, {"u": [0]}, "field 'title'"),
    ({"0": {"title": "Pen"}}, {"u": []}, "field 'u': user 'u' must map to a non-empty list"),
    ('{"0": {"title": "Pen"},\n"0": {"title": "Ink"}}', {"u": [0]}, "X.item.json, line 2, field '0': key '0' appears twice"),
    ({"0": {"title": "Pen"}}, {"u": [0, 3]}, "refers to item 3"),
])
def test_lcrec_errors_name_file_line_and_field(tmp_path, items, inter, msg):
    with pytest.raises(DataError, match=msg.replace("(", r"\(").replace("[", r"\[")):
        read_lcrec(_lcrec(tmp_path, items, inter), "X")


def test_missing_files_say_where_the_data_should_be(tmp_path):
    with pytest.raises(DataError, match="X.item.json: file not found"): read_lcrec(tmp_path, "X")
    with pytest.raises(DataError, match="file not found"): read_unisrec(tmp_path, "X")
    with pytest.raises(DataError, match="amazon14_office_unitok: folder not found; dataset 'office' needs Office_Products.inter.json"):
        load_dataset("office", tmp_path / "nope")
    with pytest.raises(DataError, match="unknown dataset 'books'"): load_dataset("books", tmp_path)


def _unisrec(tmp_path, train, valid="0\t1 2\t3\n", test="0\t1 2 3\t4\n", head="user_id:token\titem_id_list:token_seq\titem_id:token\n"):
    (tmp_path / "X.item2index").write_text("".join(f"A{i}\t{i}\n" for i in range(1, 6)))
    (tmp_path / "X.text").write_text("item_id:token\ttext:token_seq\n" + "".join(f"A{i}\tItem {i}. Cat Root Path. Brand.\n" for i in range(1, 6)))
    for split, body in (("train", train), ("valid", valid), ("test", test)):
        (tmp_path / f"X.{split}.inter").write_text(head + body)
    return tmp_path


def test_unisrec_reassembles_and_rejects_bad_rows(tmp_path):
    ds = read_unisrec(_unisrec(tmp_path, "0\t1\t2\n"), "X")
    assert [ds.items.item_id[s].tolist() for s in ds.seqs] == [["A1", "A2", "A3", "A4"]]
    with pytest.raises(DataError, match=r"X.train.inter, line 2: expected 3 tab-separated fields"):
        read_unisrec(_unisrec(tmp_path, "0\t1\n"), "X")
    with pytest.raises(DataError, match=r"line 1: header"):
        read_unisrec(_unisrec(tmp_path, "0\t1\t2\n", head="a\tb\tc\n"), "X")
    with pytest.raises(DataError, match=r"line 2, field 'item_id_list': item ids must be integers"):
        read_unisrec(_unisrec(tmp_path, "0\tone\t2\n"), "X")
    with pytest.raises(DataError, match="does not continue"):
        read_unisrec(_unisrec(tmp_path, "0\t5\t2\n"), "X")


def test_amazon_reader_errors(tmp_path):
    meta = tmp_path / "meta.json"; meta.write_text(json.dumps({"asin": "a", "title": "Pen"}) + "\n")
    rv = tmp_path / "rv.json"
    rv.write_text(json.dumps({"reviewerID": "u", "asin": "a", "unixReviewTime": 1e9}) + "\n" + '{"reviewerID": "u", "asin": \n')
    with pytest.raises(DataError, match="rv.json, line 2: malformed JSON"): read_amazon(rv, meta)
    rv.write_text(json.dumps({"asin": "a", "unixReviewTime": 1e9}) + "\n")
    with pytest.raises(DataError, match="line 1, field 'reviewerID': missing field"): read_amazon(rv, meta)
    rv.write_text(json.dumps({"reviewerID": "u", "asin": "zz", "unixReviewTime": 1e9}) + "\n")
    with pytest.raises(DataError, match="rv.json: has no review of an item titled in meta.json"): read_amazon(rv, meta)


def test_short_users_and_impossible_sampling():
    ds = synthetic_dataset(n_users=20, n_items=30, seed=0)
    short = ds.__class__("s", ds.items, ["a"], [[0]])
    with pytest.raises(DataError, match="user 'a' has 1 interaction.*kcore"): leave_one_out(short)
    sp = leave_one_out(ds)
    with pytest.raises(DataError, match="lower DataCfg.n_neg"): sample_candidates(sp.test, ds.n_items, n_neg=29)
    with pytest.raises(ValueError, match="unknown 'hard'"): sample_candidates(sp.test, ds.n_items, strategy="hard")


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="DataCfg.neg_sampling"): get_profile("tiny", {"data.neg_sampling": "hard"})
    with pytest.raises(ConfigError, match="unknown field 'lrr'"): get_profile("tiny", {"train.lrr": 1.0})
    with pytest.raises(ConfigError, match="ModelCfg.student_layers"): get_profile("tiny", {"model.student_layers": 0})
    with pytest.raises(ConfigError, match="choose one of"): get_profile("laptop")


def test_unwritable_results_dir_leaves_nothing(tmp_path):
    blocker = tmp_path / "file"; blocker.write_text("x")  # a file where a folder should be: unwritable even for root
    with pytest.raises(OSError, match="choose a writable results folder"):
        atomic_write_json(blocker / "sub" / "m.json", {"a": 1})
    with pytest.raises(OSError):
        Run("exp", "r", {"a": 1}, root=blocker)
    assert blocker.read_text() == "x" and list(tmp_path.iterdir()) == [blocker]


def test_finished_run_is_never_overwritten(tmp_path):
    run = Run("exp", "r", {"a": 1}, root=tmp_path); run.finish({"m": 1.0})
    before = {p.name: p.read_bytes() for p in run.path.iterdir()}
    again = Run("exp", "r", {"a": 1}, root=tmp_path)
    with pytest.raises(RunFinishedError): again.finish({"m": 2.0})
    assert {p.name: p.read_bytes() for p in run.path.iterdir()} == before
    (run.path / "config.json").write_text(json.dumps({"a": 2}))
    with pytest.raises(RunFinishedError, match="different config"): Run("exp", "r", {"a": 1}, root=tmp_path)
