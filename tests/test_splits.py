import numpy as np
import pytest
from sksurv.metrics import brier_score, cumulative_dynamic_auc

from survival_framework.metrics import censor_after, to_structured
from survival_framework.splits import assign_folds, stratified_sample
from survival_framework.timegrid import evaluation_time_grid


def test_folds_are_stratified_and_cover_every_row(gbsg2):
    event = gbsg2["event"].to_numpy()
    folds = assign_folds(event, 5, seed=1)
    assert set(folds) == set(range(5))
    sizes = np.bincount(folds)
    assert sizes.max() - sizes.min() <= 1
    rate = event.mean()
    for k in range(5):
        assert abs(event[folds == k].mean() - rate) < 0.01


def test_folds_are_reproducible_and_depend_on_seed(gbsg2):
    event = gbsg2["event"].to_numpy()
    np.testing.assert_array_equal(assign_folds(event, 5, 3), assign_folds(event, 5, 3))
    assert (assign_folds(event, 5, 3) != assign_folds(event, 5, 4)).any()


def test_stratified_sample_keeps_event_rate(gbsg2):
    sample = stratified_sample(gbsg2, "event", 300, seed=0)
    assert len(sample) == 300
    assert abs(sample["event"].mean() - gbsg2["event"].mean()) < 0.01
    assert stratified_sample(gbsg2, "event", 10_000, seed=0) is gbsg2


@pytest.mark.parametrize("n_folds", [2, 5, 10])
def test_time_grid_is_valid_for_every_fold(gbsg2, n_folds):
    time, event = gbsg2["time"].to_numpy(), gbsg2["event"].to_numpy()
    folds = assign_folds(event, n_folds, seed=0)
    grid = evaluation_time_grid(time, event, folds, n_times=15)
    times = np.asarray(grid["times"])
    assert np.all(np.diff(times) > 0) and grid["tau"] == times[-1]
    for k in range(n_folds):
        tr, te = folds != k, folds == k
        assert times.min() >= time[te].min() and times.max() < time[te].max()
        assert times.max() < time[tr].max()
        y_tr, y_te = to_structured(event[tr], time[tr]), to_structured(event[te], time[te])
        surv = np.full((te.sum(), times.size), 0.5)
        # must not raise for any fold
        brier_score(y_tr, censor_after(y_te, times.max()), surv, times)
        cumulative_dynamic_auc(y_tr, censor_after(y_te, times.max()), 1 - surv, times)
