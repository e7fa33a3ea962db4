"""A job loads only what its model and its metrics need (issue: small tables fast).

Every check here compares the light path with the library it replaces: the array checks with
scikit-learn's, the chi-square tail (closed forms, no ``scipy.special``) with ``scipy.stats``,
the Arrow <-> numpy conversions with pyarrow's own, the Parquet writer with pandas' (byte for
byte), the parameter API with ``sklearn.base.clone``. The import checks run real entry points
in fresh interpreters; the last one runs real ``fit_model`` jobs through Snakemake and records
what each job imported.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from conftest import REPO, snakemake

SCRIPTS = REPO / "scripts"

# what no fit job may load, whatever its model (issue 15), and what the models implemented in
# numpy alone must not load either
NEVER_IN_A_FIT_JOB = {"lifelines", "pandera", "matplotlib", "pyspark", "jsonschema"}
NUMPY_MODELS_NEVER = {
    "sklearn",
    "sksurv",
    "xgboost",
    "pandas",
    "scipy.stats",
    "scipy.special",
    "joblib",
}
LIBRARIES = {
    "coxph": set(),
    "weibull_aft": set(),
    "km": set(),
    "coxnet": {"sksurv", "sklearn"},
    "rsf": {"sksurv", "sklearn"},
    "gbsa": {"xgboost", "sklearn"},  # `import xgboost` loads scikit-learn when it is installed
}


def _top(modules: list[str]) -> set[str]:
    """Loaded modules and their top-level packages (``scipy.stats`` counts as itself)."""
    out = set(modules)
    out |= {m.split(".")[0] for m in modules}
    return out


# --------------------------------------------------------------------------- array checks
def _outcome(call):
    try:
        value = call()
    except (ValueError, TypeError) as exc:
        return ("raises", type(exc).__name__, str(exc))
    return ("value", value.dtype.str, value.shape, value.tobytes())


CHECK_ARRAY_INPUTS = [
    np.arange(5.0),
    np.arange(5),
    np.array([True, False]),
    np.array([1.0, np.nan]),
    np.array([1.0, np.inf]),
    np.array([1.0, -np.inf], dtype=np.float32),
    np.array([], dtype=float),
    np.zeros((0, 3)),
    np.zeros((3, 0)),
    np.ones((2, 3)),
    np.ones((2, 2, 2)),
    np.array(3.0),
    np.array([1, 2], dtype=object),
    np.array([1.0, None], dtype=object),
    np.array(["a", "b"]),
    np.array([1 + 2j]),
    [1.0, 2.0],
    [[1.0], [np.nan]],
]


@pytest.mark.parametrize("i", range(len(CHECK_ARRAY_INPUTS)))
@pytest.mark.parametrize("estimator", [None, "uno_c"])
def test_check_array_is_scikit_learns(i, estimator):
    import warnings

    from sklearn.utils.validation import check_array as sk_check_array

    from survival_framework.outcome import check_array

    x = CHECK_ARRAY_INPUTS[i]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = _outcome(
            lambda: sk_check_array(
                x, ensure_2d=False, allow_nd=False, input_name="estimate", estimator=estimator
            )
        )
    assert _outcome(lambda: check_array(x, input_name="estimate", estimator=estimator)) == (
        expected
    )


@pytest.mark.parametrize(
    "arrays",
    [
        ([1, 2], [3, 4]),
        ([1, 2], [3, 4, 5]),
        (np.zeros(3), None, np.ones((3, 2))),
        (np.zeros(2), np.zeros(4), np.zeros(2)),
        (np.array(3.0), [1]),
    ],
)
def test_check_consistent_length_is_scikit_learns(arrays):
    from sklearn.utils.validation import check_consistent_length as sk_check

    from survival_framework.outcome import check_consistent_length

    def run(fn):
        try:
            fn(*arrays)
        except (ValueError, TypeError) as exc:
            return type(exc).__name__, str(exc)
        return None

    assert run(check_consistent_length) == run(sk_check)


def test_chi2_sf_equals_scipy_stats():
    """D-calibration's p-value without scipy.special (~0.3 s in every fit job's scoring)."""
    from scipy.stats import chi2

    from survival_framework.calibration import chi2_sf

    rng = np.random.default_rng(0)
    x = np.concatenate([[0.0, 1e-300, 1e-12], rng.exponential(10, 500), [1e3, 1e6, np.inf]])
    for df in range(1, 30):
        ref = chi2.sf(x, df)
        ours = np.array([chi2_sf(v, df) for v in x])
        np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="dof must be a positive integer"):
        chi2_sf(1.0, 0)


# --------------------------------------------------------------------------- Arrow <-> numpy
ARROW_TYPES = [
    pa.int8(),
    pa.int16(),
    pa.int32(),
    pa.int64(),
    pa.uint8(),
    pa.uint16(),
    pa.uint32(),
    pa.uint64(),
    pa.float32(),
    pa.float64(),
    pa.bool_(),
]


def _chunked(rng, typ, with_nulls: bool) -> pa.ChunkedArray:
    chunks = []
    for n in (0, 1, 7, 64, 133):
        values = rng.integers(0, 100, n)
        if pa.types.is_boolean(typ):
            values = values % 2 == 0
        mask = rng.random(n) < 0.2 if with_nulls else None
        arr = pa.array(values, type=typ, mask=mask)
        chunks.append(arr.slice(min(3, n)) if n > 10 else arr)  # offsets into buffers
    return pa.chunked_array(chunks, type=typ)


@pytest.mark.parametrize("typ", ARROW_TYPES, ids=str)
@pytest.mark.parametrize("with_nulls", [False, True])
def test_arrow_to_numpy_is_pyarrows(typ, with_nulls):
    import pyarrow.compute as pc

    from survival_framework.arrow import to_numpy

    col = _chunked(np.random.default_rng(1), typ, with_nulls)
    expected = pc.fill_null(pc.cast(col, pa.float64()), float("nan")).to_numpy()
    got = to_numpy(col)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(
        to_numpy(col.chunk(4)), to_numpy(pa.chunked_array([col.chunk(4)]))
    )
    if not with_nulls and not pa.types.is_floating(typ):
        native = col.to_numpy()
        same = to_numpy(col, native.dtype)
        assert same.dtype == native.dtype
        np.testing.assert_array_equal(same, native)
    if with_nulls and col.null_count:
        with pytest.raises(ValueError, match="null"):
            to_numpy(col, np.int64)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.int8, np.uint32])
def test_from_numpy_is_pa_array(dtype):
    from survival_framework.arrow import from_numpy

    x = (np.random.default_rng(2).normal(size=(50, 3)) * 50).astype(dtype)
    x[3, 1] = np.nan if np.dtype(dtype).kind == "f" else 0
    for col in (x[:, 1], x[:, 1].copy(), x[5:9, 2]):  # strided and contiguous
        got, expected = from_numpy(col), pa.array(col)
        assert got.type == expected.type and got.null_count == expected.null_count == 0
        assert got.buffers()[1].to_pybytes() == expected.buffers()[1].to_pybytes()  # NaN too
    with pytest.raises(ValueError, match="1-D numeric"):
        from_numpy(x)


# --------------------------------------------------------------------------- Parquet bytes
def _tables():
    rng = np.random.default_rng(3)
    n = 40
    base = {
        "_row": pa.array(np.arange(n)),
        "id": pa.array([f"p-{i}" if i % 7 else None for i in range(n)]),
        "time": pa.array(rng.exponential(size=n)),
        "event": pa.array(rng.integers(0, 2, n).astype(np.int8)),
        "flag": pa.array(rng.integers(0, 2, n).astype(bool)),
        "f32": pa.array(rng.normal(size=n).astype(np.float32)),
        "risk": pa.array(rng.normal(size=n)),
        "surv@1.5": pa.array(rng.random(n)),
    }
    full = pa.table(base)
    yield "full", full, True
    yield "empty", full.slice(0, 0), False  # no string at all: pandas infers null
    yield "one row", full.slice(1, 1), True
    yield "no strings", full.drop_columns(["id"]).slice(0, 0), True
    yield "all-null strings", full.set_column(1, "id", pa.nulls(n, pa.string())), False
    yield "int nulls", full.set_column(0, "_row", pa.array([None] + list(range(1, n)))), False
    yield "bool nulls", full.set_column(4, "flag", pa.array([None] + [True] * (n - 1))), False
    yield "large string", full.set_column(1, "id", full.column("id").cast(pa.large_string())), False
    yield "dictionary", full.set_column(1, "id", full.column("id").dictionary_encode()), False
    yield "uint", full.append_column("u", pa.array(np.arange(n, dtype=np.uint16))), True
    nan = np.where(rng.random(n) < 0.1, np.nan, 1.0)
    yield "NaN", full.set_column(6, "risk", pa.array(nan)), False  # pandas writes null
    yield "float nulls", full.set_column(6, "risk", pa.array(nan, from_pandas=True)), False


@pytest.mark.parametrize("name", [t[0] for t in _tables()])
def test_write_arrow_writes_the_bytes_pandas_writes(tmp_path, name):
    from survival_framework.io import pandas_schema_metadata, write_arrow, write_parquet

    table, fast = next((t, fast) for n, t, fast in _tables() if n == name)
    assert (pandas_schema_metadata(table) is not None) == fast  # else through pandas
    write_arrow(table, tmp_path / "arrow.parquet")
    write_parquet(table.to_pandas(), tmp_path / "pandas.parquet")
    assert (tmp_path / "arrow.parquet").read_bytes() == (tmp_path / "pandas.parquet").read_bytes()
    if fast:  # the metadata itself, as pyarrow computes it from the DataFrame
        expected = pa.Table.from_pandas(table.to_pandas(), preserve_index=False).schema.metadata
        assert pandas_schema_metadata(table) == expected[b"pandas"]
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "arrow.parquet"), table.to_pandas(), check_dtype=True
    )


# --------------------------------------------------------------------------- estimator API
@pytest.mark.parametrize("name", sorted(LIBRARIES))
def test_models_keep_scikit_learns_parameter_api(name):
    from sklearn.base import clone

    from survival_framework.models import get_model

    model = get_model(name, random_state=3)
    params = model.get_params()
    twin = clone(model)
    assert type(twin) is type(model) and twin is not model and twin.get_params() == params
    for key, value in params.items():
        assert model.set_params(**{key: value}) is model
    with pytest.raises(ValueError, match="Invalid parameter 'nope'"):
        model.set_params(nope=1)
    again = pickle.loads(pickle.dumps(model))
    assert again.get_params() == params and vars(again) == vars(model)
    assert repr(model).startswith(type(model).__name__ + "(")


def test_models_pickle_as_scikit_learn_estimators_defined_outside_it():
    """The parameter mixin pickles what ``BaseEstimator`` pickled for these classes (their
    ``__dict__``, no ``_sklearn_version``), so artifacts stay byte-identical."""
    from sklearn.base import BaseEstimator

    from survival_framework.models import CoxPH

    class Old(BaseEstimator):
        def __init__(self, alpha=0.0001, ties="breslow", solver="numpy", n_iter=100, tol=1e-9):
            self.alpha, self.ties, self.solver, self.n_iter, self.tol = (
                alpha,
                ties,
                solver,
                n_iter,
                tol,
            )

    new = CoxPH()
    old = Old(**new.get_params())
    assert old.__getstate__() == new.__getstate__()
    assert repr(new) == "CoxPH()"
    assert repr(CoxPH(alpha=0.5)) == repr(Old(alpha=0.5)).replace("Old", "CoxPH")


# --------------------------------------------------------------------------- imports
ENTRY_POINT_NEVER = {
    "fit_model": NEVER_IN_A_FIT_JOB | NUMPY_MODELS_NEVER | {"pyarrow.dataset"},
    "aggregate_metrics": {"matplotlib", "lifelines", "sklearn", "sksurv", "xgboost"},
    "render_table": {"matplotlib", "lifelines", "sklearn", "sksurv", "xgboost", "scipy"},
    "fit_final_model": {"matplotlib", "lifelines", "pandera", "xgboost", "sksurv"},
    "predict_new_data": {"matplotlib", "lifelines", "pandera", "xgboost", "sksurv"},
    "split_data": {"matplotlib", "lifelines", "pandera", "xgboost", "sksurv", "pyspark"},
    # scikit-learn only to sample (run_type: sample), imported there
    "validate_data": {"matplotlib", "lifelines", "xgboost", "sksurv", "sklearn"},
}


@pytest.mark.parametrize("script", sorted(ENTRY_POINT_NEVER))
def test_entry_point_imports_are_light(script):
    """Importing a rule script in a fresh interpreter loads none of the heavy libraries its
    job does not need (models and plots import theirs where they are used)."""
    code = (
        "import importlib.util, json, sys\n"
        f"path = {str(SCRIPTS / script) + '.py'!r}\n"
        "spec = importlib.util.spec_from_file_location('entry', path)\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SCRIPTS)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    loaded = _top(json.loads(out.stdout))
    assert not ENTRY_POINT_NEVER[script] & loaded


SITECUSTOMIZE = """
import atexit, json, os, sys
def _dump():
    smk = getattr(sys.modules.get("__main__"), "snakemake", None)
    if smk is not None and str(smk.rule) == "fit_model":
        with open(os.path.join(os.environ["SW_MODULES_DIR"], f"{os.getpid()}.json"), "w") as f:
            json.dump({"model": smk.wildcards.model, "modules": sorted(sys.modules)}, f)
atexit.register(_dump)
"""


@pytest.mark.integration
def test_fit_jobs_load_only_their_models_libraries(test_workflow_run, tmp_path):
    """Real ``fit_model`` jobs, run by Snakemake in fresh processes: each loads its own
    model's library and no other heavy one (a coxph, weibull_aft or km job: no
    scikit-learn, pandas or XGBoost), and the forced rerun writes the same predictions and
    metrics as the test run's jobs, which ran in the warm job worker."""
    wd = tmp_path / "wf"
    shutil.copytree(test_workflow_run, wd, symlinks=True)
    hook, dump = tmp_path / "hook", tmp_path / "modules"
    hook.mkdir()
    dump.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    targets = [f"results/cv/{m}/fold_0/metrics.json" for m in sorted(LIBRARIES)]
    before = {t: json.loads((wd / t).read_text()) for t in targets}
    predictions = {t: (wd / t).with_name("predictions.parquet").read_bytes() for t in targets}
    env = {
        "PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]),
        "SW_MODULES_DIR": str(dump),
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        snakemake(
            wd,
            "--cores",
            "2",
            "--configfile",
            "config/test/config.yaml",
            # a fresh process per job (the warm worker's forks hold every library)
            "--config",
            'execution={"job_worker": "fresh"}',
            "--forcerun",
            *targets,
            "--",
            *targets,
        )
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    records = [json.loads(p.read_text()) for p in dump.glob("*.json")]
    loaded = {r["model"]: _top(r["modules"]) for r in records}
    assert sorted(loaded) == sorted(LIBRARIES) and len(records) == len(LIBRARIES)
    heavy = {"sklearn", "sksurv", "xgboost"}
    for model, modules in loaded.items():
        assert not NEVER_IN_A_FIT_JOB & modules, model
        assert heavy & modules == LIBRARIES[model], model  # its own library, no other
        if not LIBRARIES[model]:
            assert not NUMPY_MODELS_NEVER & modules, model
    for t in targets:  # the forced rerun wrote the same results
        after = json.loads((wd / t).read_text())
        assert after["metrics"] == before[t]["metrics"]
        assert (wd / t).with_name("predictions.parquet").read_bytes() == predictions[t]
