"""Real public datasets bundled with scikit-survival, exported as demo inputs."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

# pandas is imported where it is used: the Snakefile imports this module for the names

__all__ = ["DEMO_DATASETS", "load_demo", "export_demo"]

# name -> (loader in sksurv.datasets, columns dropped, description)
DEMO_DATASETS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "flchain": (
        "load_flchain",
        ("chapter",),  # cause of death: only known for deaths, leaks the outcome
        "Serum free light chain study, 7874 subjects (Dispenzieri et al. 2012)",
    ),
    "gbsg2": ("load_gbsg2", (), "German Breast Cancer Study Group 2, 686 patients"),
    "whas500": ("load_whas500", (), "Worcester Heart Attack Study, 500 patients"),
    "veterans": ("load_veterans_lung_cancer", (), "Veterans' lung cancer trial, 137 patients"),
    "aids": ("load_aids", (), "AIDS Clinical Trial, 1151 patients"),
    "breast_cancer": (
        "load_breast_cancer",
        (),
        "Breast cancer gene expression (76 genes), 198 patients (Desmedt et al. 2007)",
    ),
}


def load_demo(name: str) -> pd.DataFrame:
    """Load a bundled dataset as one table with columns ``time``, ``event`` and features.

    Parameters
    ----------
    name : str
        One of :data:`DEMO_DATASETS`.

    Returns
    -------
    pandas.DataFrame
    """
    if name not in DEMO_DATASETS:
        raise ValueError(f"unknown demo dataset {name!r}; valid: {', '.join(DEMO_DATASETS)}")
    import pandas as pd
    import sksurv.datasets

    loader, drop, _ = DEMO_DATASETS[name]
    X, y = getattr(sksurv.datasets, loader)()
    event_field, time_field = y.dtype.names
    df = X.drop(columns=list(drop)).copy()
    for col in df.columns:
        if isinstance(df[col].dtype, pd.CategoricalDtype):
            df[col] = df[col].astype(object).where(df[col].notna(), None)
    df.insert(0, "event", y[event_field].astype(int))
    df.insert(0, "time", y[time_field].astype(float))
    return df


def export_demo(name: str, path: str | os.PathLike) -> pd.DataFrame:
    """Write :func:`load_demo` ``(name)`` to ``path`` as CSV and return it."""
    from .io import write_csv

    df = load_demo(name)
    write_csv(df, path)
    return df
