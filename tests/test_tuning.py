"""The package pieces of nested tuning (survival_framework.tuning): search spaces,
candidates and their groups, Coxnet's regularisation path, the inner splits of an outer
training fold (no outer test row in them, preprocessing fitted on inner training rows
only), skipping and selection."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from etl_parity import tricky_clean_table
from survival_framework.contract import ROW_COL
from survival_framework.etl import run_pandas_etl, split_paths, training_rows
from survival_framework.search_space import candidate_groups, candidates, is_grid, parse_space
from survival_framework.splits import repeat_seed
from survival_framework.tuning import (
    MIN_INNER_EVENTS,
    inner_fold_skip_reason,
    inner_seed,
    outer_training_rows,
    select_candidate,
    write_inner_splits,
    write_rows,
)

ETL = dict(min_frequency=0.02, n_times=12, quantiles=(0.1, 0.8), max_levels=3)

# ------------------------------------------------------------------------------------
# search spaces and candidates
# ------------------------------------------------------------------------------------


def test_parse_space_normalises_grids_and_ranges():
    space = parse_space("rsf", {"max_depth": [4, 8], "min_leaf": {"low": 1, "high": 50}})
    assert space == {"max_depth": [4, 8], "min_leaf": {"low": 1, "high": 50, "log": False}}
    assert not is_grid(space)
    assert is_grid(parse_space("coxnet", {"l1_ratio": (0.5, 1.0)}))


@pytest.mark.parametrize(
    ("tune", "message"),
    [
        ({}, "models.m.tune: expected a mapping"),
        ({"a": []}, "models.m.tune.a: the list of values is empty"),
        ({"a": {"low": 1}}, "models.m.tune.a: a range is {low, high, log}"),
        ({"a": {"low": 1, "high": 2, "step": 1}}, "got keys ['high', 'low', 'step']"),
        ({"a": {"low": 2, "high": 2}}, "models.m.tune.a: low (2) must be below high (2)"),
        ({"a": {"low": 0, "high": 1, "log": True}}, "log: true needs low > 0"),
        ({"a": {"low": "x", "high": 1}}, "models.m.tune.a.low: expected a finite number"),
        ({"a": {"low": 0, "high": math.inf}}, "models.m.tune.a.high: expected a finite number"),
        ({"a": {"low": 0, "high": 1, "log": "yes"}}, "models.m.tune.a.log: expected true"),
        ({"a": 3}, "models.m.tune.a: expected a list of values or {low, high, log}"),
    ],
)
def test_parse_space_names_the_key_at_fault(tune, message):
    with pytest.raises(ValueError) as err:
        parse_space("m", tune)
    assert message in str(err.value)


def test_a_grid_gives_every_combination_in_order():
    space = parse_space("m", {"a": [1, 2, 3], "b": ["x", "y"]})
    got = candidates(space, n_candidates=1, seed=0, model="m")  # n_candidates: not used
    assert got == [{"a": a, "b": b} for a in (1, 2, 3) for b in ("x", "y")]


def test_a_grid_of_numpy_values_is_json_ready():
    space = parse_space("m", {"a": list(np.array([0.1, 0.2]))})
    got = candidates(space, 1, 0, "m")
    assert all(type(c["a"]) is float for c in got)
    json.dumps(got)


def test_random_search_is_seeded_by_seed_and_model_and_stays_in_range():
    space = parse_space(
        "m",
        {
            "alpha": {"low": 1e-4, "high": 1.0, "log": True},
            "frac": {"low": 0.1, "high": 0.9},
            "depth": [3, 5, 7],
        },
    )
    a = candidates(space, 50, seed=7, model="m")
    assert a == candidates(space, 50, seed=7, model="m")  # the same for every job
    assert a != candidates(space, 50, seed=8, model="m")
    assert a != candidates(space, 50, seed=7, model="other")
    assert len(a) == 50
    alphas = np.array([c["alpha"] for c in a])
    assert ((alphas >= 1e-4) & (alphas <= 1.0)).all()
    assert all(0.1 <= c["frac"] <= 0.9 and c["depth"] in (3, 5, 7) for c in a)
    json.dumps(a)


def test_log_ranges_are_log_uniform_and_integer_ranges_integers():
    space = parse_space("m", {"alpha": {"low": 1e-4, "high": 1.0, "log": True}})
    logs = np.log10([c["alpha"] for c in candidates(space, 4000, 1, "m")])
    # uniform on [-4, 0]: mean -2, a quarter of the draws in each unit
    assert logs.mean() == pytest.approx(-2.0, abs=0.1)
    counts = np.histogram(logs, bins=4, range=(-4, 0))[0] / logs.size
    np.testing.assert_allclose(counts, 0.25, atol=0.03)
    ints = candidates(parse_space("m", {"k": {"low": 1, "high": 4}}), 200, 1, "m")
    values = [c["k"] for c in ints]
    assert all(type(v) is int for v in values)
    assert sorted(values) == [1, 2, 3, 4]  # repeated draws dropped: four distinct sets


def test_candidate_groups_share_everything_but_the_path_parameter():
    cands = [
        {"alpha": 0.1, "l1_ratio": 0.5},
        {"alpha": 0.2, "l1_ratio": 0.9},
        {"alpha": 0.3, "l1_ratio": 0.5},
        {"alpha": 0.4, "l1_ratio": 0.9},
        {"alpha": 0.5, "l1_ratio": 0.1},
    ]
    assert candidate_groups(cands, "alpha") == [[0, 2], [1, 3], [4]]
    assert candidate_groups(cands, None) == [[i] for i in range(5)]
    assert candidate_groups(cands, "tol") == [[i] for i in range(5)]  # not tuned: singletons
    # a random search of coxnet's tuned.yaml space: every candidate in exactly one group
    space = parse_space("coxnet", {"alpha": {"low": 1e-4, "high": 1.0, "log": True},
                                   "l1_ratio": [0.1, 0.5, 0.9]})  # fmt: skip
    drawn = candidates(space, 30, 42, "coxnet")
    groups = candidate_groups(drawn, "alpha")
    assert sorted(i for g in groups for i in g) == list(range(len(drawn)))
    assert len(groups) == 3
    for g in groups:
        assert len({drawn[i]["l1_ratio"] for i in g}) == 1


# ------------------------------------------------------------------------------------
# the inner splits of one outer training fold
# ------------------------------------------------------------------------------------


def test_inner_seeds_differ_from_outer_repeats_and_between_resamples():
    seeds = [inner_seed(42, f) for f in range(10)]
    assert len(set(seeds)) == 10 and seeds == [inner_seed(42, f) for f in range(10)]
    assert not set(seeds) & {repeat_seed(42, r) for r in range(10)}


def inner_paths(out, inner_folds: int = 3) -> dict:
    """Output paths of an inner split (the outer split's layout, plus the row subset)."""
    return {**split_paths(out, inner_folds), "subset_path": out / "clean.parquet"}


@pytest.fixture
def outer_split(tmp_path):
    clean, schema = tricky_clean_table(tmp_path)
    out = split_paths(tmp_path / "outer", 3, 2)
    run_pandas_etl(clean, schema, **out, n_folds=3, n_repeats=2, seed=5, **ETL)
    return clean, schema, out


def test_outer_training_rows_are_the_resamples_training_rows(outer_split):
    clean, _, out = outer_split
    folds = pd.read_parquet(out["folds_path"])
    row = folds.loc[folds["repeat"] == 0, ROW_COL].to_numpy()
    masks = training_rows(
        np.stack([folds.loc[folds["repeat"] == r, "fold"].to_numpy() for r in (0, 1)]), 3
    )
    for f in range(6):
        np.testing.assert_array_equal(
            outer_training_rows(out["folds_path"], f, 3), np.sort(row[masks[f]])
        )
        train = pd.read_parquet(out["train_paths"][f], columns=[ROW_COL])[ROW_COL]
        np.testing.assert_array_equal(outer_training_rows(out["folds_path"], f, 3), train)
    with pytest.raises(ValueError, match="no repeat 2"):
        outer_training_rows(out["folds_path"], 6, 3)


def test_write_rows_keeps_schema_and_order(outer_split, tmp_path):
    clean, _, _ = outer_split
    full = pd.read_parquet(clean)
    rows = full[ROW_COL].to_numpy()[::3]
    assert write_rows(clean, rows[::-1], tmp_path / "sub.parquet") == rows.size
    sub = pd.read_parquet(tmp_path / "sub.parquet")
    pd.testing.assert_frame_equal(sub, full.iloc[::3].reset_index(drop=True))
    assert write_rows(clean, np.array([], dtype=np.int64), tmp_path / "none.parquet") == 0
    none = pd.read_parquet(tmp_path / "none.parquet")
    assert len(none) == 0 and list(none.columns) == list(full.columns)


@pytest.mark.parametrize("resample", [0, 4])
def test_inner_splits_see_no_outer_test_row(outer_split, tmp_path, resample):
    clean, schema, out = outer_split
    inner = inner_paths(tmp_path / "inner")
    inner.update(
        write_inner_splits(
            clean, schema, out["folds_path"], resample, **inner, n_folds=3, seed=5, **ETL
        )
    )
    outer_test = set(pd.read_parquet(out["test_paths"][resample], columns=[ROW_COL])[ROW_COL])
    outer_train = set(outer_training_rows(out["folds_path"], resample, 3))
    assert inner["n_rows"] == len(outer_train) and inner["seed"] == inner_seed(5, resample)
    seen_test: list[int] = []
    raw = pd.read_parquet(clean).set_index(ROW_COL)
    for i in range(3):
        train = pd.read_parquet(inner["train_paths"][i])
        test = pd.read_parquet(inner["test_paths"][i])
        rows_train, rows_test = set(train[ROW_COL]), set(test[ROW_COL])
        # every inner row is an outer training row, none an outer test row
        assert rows_train | rows_test <= outer_train
        assert not (rows_train | rows_test) & outer_test
        assert not rows_train & rows_test and rows_train | rows_test == outer_train
        seen_test += list(rows_test)
        # the preprocessing was fitted on the inner training rows only: its medians are
        # np.median of the raw column over exactly those rows
        state = json.loads(inner["preprocessor_paths"][i].read_text())
        assert state["n_train"] == len(rows_train)
        for col, st in state["numeric"].items():
            x = raw.loc[sorted(rows_train), col].to_numpy(dtype=float)
            assert st["median"] == np.median(x[~np.isnan(x)]), (i, col)
    assert sorted(seen_test) == sorted(outer_train)  # the inner test folds partition them
    # the inner folds are stratified on the event (sizes and events within one of each other)
    folds = pd.read_parquet(inner["folds_path"])
    ev = raw.loc[folds[ROW_COL], json.loads(schema.read_text())["event_col"]].to_numpy()
    per_fold = np.bincount(folds["fold"], weights=ev.astype(float), minlength=3)
    assert per_fold.max() - per_fold.min() <= 1
    # the inner grid is valid for every inner fold (as the outer grid is for the outer ones)
    grid = json.loads(inner["grid_path"].read_text())
    dur = json.loads(schema.read_text())["duration_col"]
    for i in range(3):
        t_test = pd.read_parquet(inner["test_paths"][i])[dur].to_numpy()
        t_train = pd.read_parquet(inner["train_paths"][i])[dur].to_numpy()
        times = np.asarray(grid["times"])
        assert (times >= t_test.min()).all() and (times < t_test.max()).all()
        assert (times < t_train.max()).all()


def test_inner_splits_reject_folds_of_another_table(outer_split, tmp_path):
    clean, schema, out = outer_split
    folds = pd.read_parquet(out["folds_path"])
    folds[ROW_COL] += 10_000  # rows the table does not have
    folds.to_parquet(tmp_path / "other_folds.parquet", index=False)
    with pytest.raises(ValueError, match="are they from the same run"):
        write_inner_splits(
            clean, schema, tmp_path / "other_folds.parquet", 0,
            **inner_paths(tmp_path / "inner"), n_folds=3, seed=5, **ETL,
        )  # fmt: skip


# ------------------------------------------------------------------------------------
# skipping and selection
# ------------------------------------------------------------------------------------


def test_inner_folds_with_too_few_events_are_skipped_with_a_reason():
    ok = np.array([1, 0, 1, 1])
    assert inner_fold_skip_reason(ok, ok) is None
    assert "1 event(s) in the inner test fold" in inner_fold_skip_reason(ok, np.array([1, 0]))
    assert "0 event(s) in the inner training fold" in inner_fold_skip_reason(
        np.zeros(5), np.ones(MIN_INNER_EVENTS)
    )


def test_select_candidate_by_the_metrics_direction():
    scores = [[0.60, 0.70, 0.65], [0.70, 0.72, 0.10], [0.66, 0.68, 0.69]]
    got = select_candidate(scores, "uno_c")
    np.testing.assert_allclose(got["mean"], np.mean(scores, axis=1), rtol=1e-15)
    assert got["best"] == int(np.argmax(np.mean(scores, axis=1))) == 2
    assert select_candidate(scores, "ibs")["best"] == int(np.argmin(np.mean(scores, axis=1)))
    # a skipped fold leaves every candidate's mean; here candidate 1 then wins
    got = select_candidate(scores, "uno_c", skipped={2: "1 event(s) in the inner test fold"})
    assert got["best"] == 1 and got["used_folds"] == [0, 1]
    assert got["skipped"] == {"2": "1 event(s) in the inner test fold"}
    np.testing.assert_allclose(got["mean"], np.mean(np.array(scores)[:, :2], axis=1))


def test_select_candidate_ties_failures_and_nothing_usable():
    assert select_candidate([[0.5, 0.7], [0.7, 0.5]], "uno_c")["best"] == 0  # tie: earlier
    got = select_candidate([[0.9, None], [0.6, 0.6], [float("nan"), 0.99]], "uno_c")
    assert got["best"] == 1 and got["mean"][0] is None and got["mean"][2] is None
    assert got["excluded"] == {
        "0": "no score on inner fold(s) [1]",
        "2": "no score on inner fold(s) [0]",
    }
    nothing = select_candidate([[0.5], [0.6]], "ibs", skipped={0: "too few events"})
    assert nothing["best"] is None and set(nothing["excluded"]) == {"0", "1"}
    with pytest.raises(ValueError, match="tuning.metric"):
        select_candidate([[0.5]], "harrell_c")
    with pytest.raises(ValueError, match="one score per inner fold"):
        select_candidate([[0.5], [0.5, 0.6]], "uno_c")


# ------------------------------------------------------------------------------------
# scoring candidates on the inner folds
# ------------------------------------------------------------------------------------


def signal_table(tmp_path, n: int = 600, event_share: float = 0.7, seed: int = 3):
    """A validated table where x0 drives the hazard strongly and x1..x4 are noise."""
    from survival_framework.io import write_json, write_parquet
    from survival_framework.schema import validate_survival_table

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    t_event = rng.exponential(np.exp(-1.5 * x[:, 0])) * 100
    t_cens = rng.exponential(100 * event_share / (1 - event_share) ** 0.5, size=n)
    df = pd.DataFrame(x, columns=[f"x{j}" for j in range(5)])
    df["time"] = np.minimum(t_event, t_cens)
    df["event"] = (t_event <= t_cens).astype(int)
    clean, schema = validate_survival_table(df, "signal.csv", "time", "event", min_rows=15)
    write_parquet(clean, tmp_path / "clean.parquet")
    write_json(schema, tmp_path / "schema.json")
    return tmp_path / "clean.parquet", tmp_path / "schema.json", schema


def inner_split_of(tmp_path, clean, schema_path, resample=0):
    outer = split_paths(tmp_path / "outer", 3)
    run_pandas_etl(clean, schema_path, **outer, n_folds=3, seed=5, **ETL)
    inner = inner_paths(tmp_path / "inner")
    inner.update(
        write_inner_splits(
            clean, schema_path, outer["folds_path"], resample, **inner, n_folds=3, seed=5, **ETL
        )
    )
    return inner


@pytest.mark.parametrize("metric", ["uno_c", "ibs"])
def test_the_known_best_parameter_is_recovered(tmp_path, metric):
    """Coxnet with a penalty that zeroes every coefficient (a constant risk: Uno's C 0.5,
    the Brier score of no information) against a light one, on a strong signal."""
    from survival_framework.tuning import score_candidate

    clean, schema_path, schema = signal_table(tmp_path)
    inner = inner_split_of(tmp_path, clean, schema_path)
    space = parse_space("coxnet", {"alpha": [5.0, 0.001]})
    results = [
        score_candidate("coxnet", {"l1_ratio": 0.5, **c}, inner, schema, metric, inner["seed"])
        for c in candidates(space, 1, 5, "coxnet")
    ]
    assert all(r["skipped"] == {} and r["errors"] == {} for r in results)
    heavy, light = (np.array(r["scores"]) for r in results)
    if metric == "uno_c":
        np.testing.assert_allclose(heavy, 0.5, atol=1e-12)  # every risk equal: all ties
        assert (light > 0.75).all(), light
    else:
        assert (light < heavy - 0.02).all(), (light, heavy)
    choice = select_candidate([r["scores"] for r in results], metric)
    assert choice["best"] == 1 and results[1]["params"] == {"l1_ratio": 0.5, "alpha": 0.001}


def path_data(n: int = 4000, p: int = 12, seed: int = 0):
    from survival_framework.metrics import to_structured

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    beta = np.where(np.arange(p) < 4, 0.8, 0.0)
    t, c = rng.exponential(np.exp(-X @ beta)), rng.exponential(1.0, n)
    return X, to_structured(t <= c, np.minimum(t, c))


def test_coxnet_path_fit_matches_a_fit_per_alpha():
    """One path fit gives, per alpha, the coefficients of a fit at that alpha alone (to
    the solver's tolerance; exactly for a path of one alpha), its own Breslow baseline,
    and leaves a Fortran X it works in place on as it was."""
    from survival_framework.models import get_model

    X, y = path_data()
    alphas = [0.003, 0.3, 0.03, 1e-4]  # any order
    for tol, atol in ((1e-7, 2e-3), (1e-12, 2e-5)):  # closer with a tighter tolerance
        base = get_model("coxnet", l1_ratio=0.5, tol=tol)
        work = np.asfortranarray(X)
        path = base.fit_path(work, y, alphas)
        np.testing.assert_allclose(work, X, rtol=0, atol=1e-12)
        assert [m.alpha for m in path] == alphas
        for a, m in zip(alphas, path, strict=True):
            alone = get_model("coxnet", l1_ratio=0.5, alpha=a, tol=tol).fit(X, y)
            np.testing.assert_allclose(m.model_.coef_, alone.model_.coef_, rtol=0, atol=atol)
            np.testing.assert_allclose(m.predict(X[:50]), alone.predict(X[:50]), atol=10 * atol)
            np.testing.assert_allclose(
                m.predict_survival(X[:50], [0.5, 1.0]),
                alone.predict_survival(X[:50], [0.5, 1.0]), atol=10 * atol,
            )  # fmt: skip
    one = get_model("coxnet", l1_ratio=0.5).fit_path(X, y, [0.03])[0]
    alone = get_model("coxnet", l1_ratio=0.5, alpha=0.03).fit(X, y)
    assert np.array_equal(one.model_.coef_, alone.model_.coef_)
    np.testing.assert_array_equal(one.predict_survival(X, [1.0]), alone.predict_survival(X, [1.0]))
    with pytest.raises(ValueError, match="distinct alphas"):
        get_model("coxnet").fit_path(X, y, [0.1, 0.1])


def test_a_group_of_alphas_is_scored_by_one_path_fit_as_one_fit_each(tmp_path):
    from survival_framework.tuning import score_candidate, score_candidates

    clean, schema_path, schema = signal_table(tmp_path)
    inner = inner_split_of(tmp_path, clean, schema_path)
    group = [{"l1_ratio": 0.5, "alpha": a, "tol": 1e-12} for a in (0.001, 5.0, 0.05)]
    got = score_candidates("coxnet", group, inner, schema, "ibs", inner["seed"])
    assert got["path"] == "alpha" and len(got["results"]) == 3
    for params, result in zip(group, got["results"], strict=True):
        alone = score_candidate("coxnet", params, inner, schema, "ibs", inner["seed"])
        assert result["params"] == params and result["errors"] == {}
        np.testing.assert_allclose(result["scores"], alone["scores"], rtol=0, atol=1e-8)
    # candidates that differ in more than alpha, or of a model without a path: refused
    with pytest.raises(ValueError, match=r"differ only in the model's path parameter \(alpha\)"):
        score_candidates("coxnet", [group[0], {**group[2], "l1_ratio": 0.9}], inner, schema,
                         "ibs", inner["seed"])  # fmt: skip
    with pytest.raises(ValueError, match=r"path parameter \(None\)"):
        score_candidates("coxph", [{"alpha": 1e-4}, {"alpha": 1.0}], inner, schema, "ibs", 1)
    assert score_candidate("coxph", {"alpha": 1e-4}, inner, schema, "ibs", 1)["errors"] == {}
    # a failed path fit fails every candidate of the group, recorded, not raised
    bad = score_candidates(
        "coxnet", [{**c, "l1_ratio": 7.0} for c in group], inner, schema, "uno_c", 1
    )
    for result in bad["results"]:
        assert result["scores"] == [None] * 3 and "l1_ratio" in result["errors"]["0"]


def test_scores_are_reproducible_and_seeded_per_inner_fold(tmp_path):
    from survival_framework.tuning import score_candidate

    clean, schema_path, schema = signal_table(tmp_path, n=300)
    inner = inner_split_of(tmp_path, clean, schema_path)
    params = {"n_estimators": 10, "min_samples_leaf": 5, "max_features": "sqrt"}
    a = score_candidate("rsf", params, inner, schema, "uno_c", inner["seed"])
    b = score_candidate("rsf", params, inner, schema, "uno_c", inner["seed"])
    c = score_candidate("rsf", params, inner, schema, "uno_c", inner["seed"] + 1)
    assert a["scores"] == b["scores"] and a["scores"] != c["scores"]
    assert all(0.5 < s < 1 for s in a["scores"])


def test_a_failed_fit_is_recorded_and_left_out(tmp_path):
    from survival_framework.tuning import score_candidate

    clean, schema_path, schema = signal_table(tmp_path, n=300)
    inner = inner_split_of(tmp_path, clean, schema_path)
    bad = score_candidate("coxnet", {"l1_ratio": 7.0}, inner, schema, "uno_c", 1)
    assert bad["scores"] == [None] * 3 and set(bad["errors"]) == {"0", "1", "2"}
    assert "l1_ratio" in bad["errors"]["0"]
    good = score_candidate("coxnet", {"l1_ratio": 0.5}, inner, schema, "uno_c", 1)
    choice = select_candidate([bad["scores"], good["scores"]], "uno_c")
    assert choice["best"] == 1 and "no score" in choice["excluded"]["0"]


def test_an_inner_fold_with_too_few_events_is_skipped_not_a_crash(tmp_path):
    """Few events: some inner test folds hold fewer than MIN_INNER_EVENTS; they are
    skipped for every candidate with the reason, and the choice uses the others."""
    from survival_framework.tuning import score_candidate

    clean, schema_path, schema = signal_table(tmp_path, n=400)
    frame = pd.read_parquet(clean)
    # keep 7 events: the outer training fold then holds 4-5, the inner test folds 1-2
    events = frame.index[frame["event"] == 1]
    frame.loc[events[7:], "event"] = 0
    frame.to_parquet(clean, index=False)
    inner = inner_split_of(tmp_path, clean, schema_path)
    results = [
        score_candidate("coxph", {"alpha": a}, inner, schema, "uno_c", inner["seed"])
        for a in (1e-4, 1.0)
    ]
    skipped = results[0]["skipped"]
    assert skipped and skipped == results[1]["skipped"]
    assert all("event(s) in the inner" in why for why in skipped.values())
    choice = select_candidate(
        [r["scores"] for r in results], "uno_c", skipped={int(i): w for i, w in skipped.items()}
    )
    assert choice["used_folds"] == [i for i in range(3) if str(i) not in skipped]
    assert choice["skipped"] == skipped


def test_the_config_check_parses_spaces_and_leaves_untuned_models_as_they_were():
    from survival_framework.configcheck import ConfigError, model_settings
    from survival_framework.modelspec import read_registry

    registry = read_registry()
    models = {
        "coxnet": {"params": {"l1_ratio": 0.5}, "tune": {"alpha": {"low": 1e-3, "high": 1}}},
        "rsf": {"params": {"n_estimators": 10}},
    }
    got = model_settings(models, registry)
    assert got["coxnet"]["tune"] == {"alpha": {"low": 1e-3, "high": 1, "log": False}}
    assert got["rsf"] == {"enabled": True, "params": {"n_estimators": 10}}  # no "tune" key
    with pytest.raises(ConfigError, match=r"models\.rsf\.tune\.max_depth: model 'rsf'"):
        model_settings({"rsf": {"tune": {"max_depth": ["deep"]}}}, registry)
    with pytest.raises(ConfigError, match=r"models\.gbsa\.tune: expected a mapping"):
        model_settings({"gbsa": {"tune": {}}}, registry)


def test_the_benchmarks_gain_table_signs_by_the_metrics_direction():
    """bench_tuning.gain_table: positive gain is better, for C (higher) and IBS (lower)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "bench"))
    from bench_tuning import gain_table

    def frame(c, ibs):
        return pd.DataFrame(
            [{"model": "coxnet", "fold": k, "metric": "uno_c", "value": v} for k, v in enumerate(c)]
            + [
                {"model": "coxnet", "fold": k, "metric": "ibs", "value": v}
                for k, v in enumerate(ibs)
            ]
            + [{"model": "coxnet", "fold": 0, "metric": "dcal_p", "value": 0.5}]
            + [{"model": "rsf", "fold": 0, "metric": "uno_c", "value": 0.9}]
        )

    got = gain_table(frame([0.70, 0.72], [0.20, 0.22]), frame([0.71, 0.75], [0.19, 0.23]),
                     ["coxnet"]).set_index("metric")  # fmt: skip
    assert set(got.index) == {"uno_c", "ibs"}  # no direction for dcal_p; rsf not tuned
    assert got.loc["uno_c", "gain"] == pytest.approx(0.02)
    assert got.loc["uno_c", "gain_se"] == pytest.approx(np.std([0.01, 0.03], ddof=1) / np.sqrt(2))
    assert got.loc["ibs", "gain"] == pytest.approx(0.0) and got.loc["ibs", "folds_better"] == 1
    assert got.loc["uno_c", "tuned"] == pytest.approx(0.73)
