"Fisher information feeds the layer weights and the Fisher-chosen student, across lwa.fisher, lwa.weighting and lwa.recommender."
import numpy as np
import pytest
import torch

from lwa.config import ConfigError
from lwa.data import leave_one_out, synthetic_dataset
from lwa.fisher import fisher_by_layer, fisher_info
from lwa.models import load_teacher, select_layers
from lwa.recommender import PadCollator, Prompter, PromptDataset, from_lm, student_of
from lwa.weighting import fisher_layers, layer_weights


@pytest.fixture(scope="module")
def setup():
    lm, tok = load_teacher("tiny")
    ds = synthetic_dataset(n_users=40, n_items=40, seed=1); sp = leave_one_out(ds)
    pr = Prompter(tok, ds.items.title.tolist(), 6, 4)
    loader = torch.utils.data.DataLoader(PromptDataset(sp.train.subsample(48, 0), pr), batch_size=16, collate_fn=PadCollator(pr.pad_id))
    return from_lm(lm, pr.titles), loader


def test_fisher_to_weights_to_student(setup):
    rec, loader = setup
    F = fisher_by_layer(fisher_info(rec, loader, method="ghost"))
    assert len(F) == 8 and (F > 0).all()
    layers = select_layers(8, 3)
    for s in ("uniform", "linear", "exponential", "fisher", "fisher_semantic"):
        w = layer_weights(s, layers, 8, F.to_numpy())
        assert w.shape == (3,) and abs(w.sum() - 1) < 1e-12 and (w > 0).all()
    chosen = fisher_layers(F.to_numpy(), 3, "top")
    assert chosen == sorted(np.argsort(-F.to_numpy())[:3].tolist())
    stu = student_of(rec, strategy=chosen)
    assert stu.config.lm["lwa_teacher_layers"] == chosen


def test_ghost_matches_the_reference_loop(setup):
    rec, loader = setup
    a = fisher_info(rec, loader, method="ghost"); b = fisher_info(rec, loader, method="loop")
    np.testing.assert_allclose(a.fisher.to_numpy(), b.fisher.to_numpy(), rtol=1e-3)  # float32 here; float64 agreement is in the notebook


def test_bad_weighting_inputs_are_named():
    with pytest.raises(ConfigError, match="beta: must be a number >= 0"): layer_weights("fisher_semantic", [0], 4, [1, 1, 1, 1], beta=-1)
    with pytest.raises(ConfigError, match="unknown 'ficher'"): layer_weights("ficher", [0], 4, [1, 1, 1, 1])
    with pytest.raises(ConfigError, match="NaN"): layer_weights("fisher", [0], 4, [1, float("nan"), 1, 1])
    with pytest.raises(ConfigError, match="deeper than its 4-layer teacher"): select_layers(4, 5)
