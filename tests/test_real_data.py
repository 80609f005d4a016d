"The shared Amazon data: its README's counts, the two Scientific formats agreeing, and popularity on real data."
from collections import Counter

import numpy as np
from scipy.stats import spearmanr

from conftest import needs_data
from lwa.data import kcore, leave_one_out, sample_candidates
from lwa.metrics import PopularityRecommender, full_ranking_metrics, sampled_metrics

README_COUNTS = {"office": (4905, 2420, 53258), "scientific": (8442, 4385, 59427), "scientific_lcrec": (8317, 4344, 58492)}


@needs_data
def test_loading_reproduces_the_readme_counts(real):
    assert {n: (d.n_users, d.n_items, d.n_interactions) for n, d in real.items()} == README_COUNTS


@needs_data
def test_readme_samples_and_sequence_lengths(real):
    off, sci = real["office"], real["scientific"]
    assert off.items.item_id[0] == "B00000JBLH" and off.items.title[0] == "HP 12C Financial Calculator"
    assert off.items.title[off.seqs[1][0]].startswith("Texas Instruments BA II Plus Professional")
    assert sci.users[0] == "ABW8NXS7SV55K" and sci.items.item_id[sci.seqs[0][:2]].tolist() == ["B00TNNWMXI", "B00IBZE2EQ"]
    assert sci.items.title[sci.seqs[0][0]].startswith("eSUN Bronze filament 1.75mm 0.5kg")
    for d in real.values(): assert min(len(s) for s in d.seqs) == 5
    for d in (off, real["scientific_lcrec"]):  # the README measured no repeated (user, item) pairs in these two
        assert all(len(set(s.tolist())) == len(s) for s in d.seqs)
    assert abs(np.mean([len(s) for s in sci.seqs]) - 7.03) < 0.01
    assert abs(np.mean([len(s) for s in off.seqs]) - 10.86) < 0.01


@needs_data
def test_shared_sets_are_already_five_core(real):
    for d in real.values():
        k = kcore(d, 5)
        assert (k.n_users, k.n_items, k.n_interactions) == (d.n_users, d.n_items, d.n_interactions)


@needs_data
def test_the_two_scientific_folders_agree(real):
    u, l = real["scientific"], real["scientific_lcrec"]
    norm = lambda t: t.strip().rstrip(".").strip().lower()
    texts = u.items.text.map(norm).tolist()
    titles = set(l.items.title)
    assert all(any(x.startswith(norm(t)) for x in texts) for t in titles), "every LC-Rec title starts a UniSRec item text"
    by_title = {}
    for i, t in enumerate(u.items.title.map(norm)): by_title.setdefault(t, []).append(i)
    m = {j: by_title[norm(t)][0] for j, t in enumerate(l.items.title) if len(by_title.get(norm(t), [])) == 1}
    assert len(m) > 0.9 * l.n_items
    cu, cl = (np.bincount(np.concatenate(d.seqs), minlength=d.n_items) for d in (u, l))
    js = list(m)
    assert spearmanr(cl[js], cu[[m[j] for j in js]]).statistic > 0.95, "item popularity agrees across the two processings"
    sets = Counter(frozenset(u.items.title[s].map(norm)) for s in u.seqs)
    assert np.mean([frozenset(l.items.title[s].map(norm)) in sets for s in l.seqs]) > 0.8, "most users hold the same items"


@needs_data
def test_split_has_no_leakage_on_real_data(real):
    d = real["office"]; sp = leave_one_out(d)
    assert len(sp.test) == len(sp.valid) == d.n_users and len(sp.train) == d.n_interactions - 3 * d.n_users
    last = {u: len(h) for u, h in zip(sp.train.users, sp.train.histories)}
    assert all(last.get(u, 0) <= len(s) - 3 for u, s in enumerate(d.seqs))
    for h, t, u in zip(sp.test.histories, sp.test.targets, sp.test.users):
        assert t not in set(sp.train_sequences("valid")[u].tolist())


@needs_data
def test_popularity_gives_full_and_sampled_numbers_on_real_data(real):
    res = {}
    for name in ("office", "scientific"):
        d = real[name]; sp = leave_one_out(d); ex = sp.test
        pop = PopularityRecommender().fit(sp.train_sequences("test"), d.n_items)
        full = full_ranking_metrics(pop.score(len(ex)), ex.targets, (10,), exclude=ex.histories)
        cands = sample_candidates(ex, d.n_items, 99, seed=0)
        samp = sampled_metrics(pop.score_candidates(cands), (10,))
        assert 0 < full["ndcg@10"].mean() < full["hr@10"].mean() < 1 and samp["hr@10"].mean() > full["hr@10"].mean()
        res[name] = full["hr@10"].mean() * (d.n_items - np.mean([len(h) for h in ex.histories])) / 10  # HR@10 / random HR@10
    # Measured, not assumed: popularity beats a random ranking on Scientific, but not on Office, whose most popular
    # training items sit early in users' sequences (see the issue notes); the test pins both facts.
    assert res["scientific"] > 3 and res["office"] < 1
