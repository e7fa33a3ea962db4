"""The Dask ETL path: same outputs as :mod:`survival_framework.etl`, computed on a Dask
cluster (``dask.distributed``: a local cluster or the scheduler of an existing one).

Used by rule ``split_data_dask`` (``rules/dask.smk``). The streaming pandas ETL maps onto
Dask partitions as they are: a partition is a run of row groups of
``results/data/clean.parquet`` (about ``batch_rows`` rows, read by the worker that runs the
task), and every task is the pandas path's own code on that batch of rows:

1. the keys (``_row``, duration, event: 17 bytes a row) are read by this process, and the
   folds and the time grid come from :func:`~survival_framework.etl.folds_and_grid`, as in
   the other engines (identical by construction);
2. one task per partition returns, per test fold of every repeat, the moments of each
   numeric column, a seeded sample of it and the level counts of each categorical column
   (:func:`partition_statistics`); two more rounds count the values per median bucket and
   collect the few values of the buckets that hold a median
   (:func:`partition_bucket_counts`, :func:`partition_bucket_values`); the states are
   combined here by :mod:`survival_framework.fold_stats`, shared with Spark (medians
   ``np.median``'s bit for bit, means and scales to ~1e-15, level counts exact);
3. one task per partition transforms its rows with every resample's state
   (:func:`survival_framework.preprocess.transform_columns`, the pandas arithmetic) and
   writes them, split into each resample's train and test rows, as Arrow IPC part files
   beside the outputs (:func:`partition_write`); this process appends each partition's
   parts to the split files as soon as it is done, in partition order, while the workers
   write the next few (row groups of one partition's rows, as the pandas path writes one
   per batch; :func:`_write_splits`), so no matrix passes through the scheduler.

The workers read the clean table and write the parts by path: on a cluster of other
machines, ``results/`` must be on a filesystem they share with the machine that runs
Snakemake (as for Spark), and ``survival_framework`` must be importable on the workers.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow.parquet as pq

from . import fold_stats, preprocess
from .batches import BATCH_ROWS, ParquetColumns
from .contract import ROW_COL
from .etl import (
    check_keys,
    check_split_paths,
    folds_and_grid,
    key_columns,
    repeat_folds,
    write_folds_and_grid,
)
from .io import atomic_path, read_json, read_table, write_json

if TYPE_CHECKING:  # dask is an optional extra: imported lazily at run time
    from distributed import Client

__all__ = [
    "dask_client",
    "partitions",
    "partition_statistics",
    "partition_bucket_counts",
    "partition_bucket_values",
    "partition_write",
    "run_dask_etl",
]


# ---------------------------------------------------------------------------------------
# the cluster
# ---------------------------------------------------------------------------------------


@contextmanager
def dask_client(
    scheduler: str, threads: int, mem_mb: int | None, log: logging.Logger | None = None
) -> Iterator[Client]:
    """A ``dask.distributed`` client of ``scheduler``, closed (with its cluster) at the end.

    Parameters
    ----------
    scheduler : str
        ``local``: a :class:`distributed.LocalCluster` of ``threads`` single-threaded
        worker processes, ``mem_mb / threads`` MB each (the rule's ``threads:`` and
        ``mem_mb``), on 127.0.0.1 without a dashboard; else the address of a running
        scheduler (``tcp://host:8786``), whose workers are the cluster's own.
    threads : int
    mem_mb : int, optional
    log : logging.Logger, optional
    """
    from distributed import Client, LocalCluster

    log = log or logging.getLogger(__name__)
    if scheduler == "local":
        threads = max(1, int(threads))
        limit = f"{int(mem_mb) // threads}MB" if mem_mb else "auto"
        with (
            LocalCluster(
                n_workers=threads,
                threads_per_worker=1,
                processes=True,
                memory_limit=limit,
                host="127.0.0.1",
                dashboard_address=None,
            ) as cluster,
            Client(cluster) as client,
        ):
            log.info("dask: local cluster of %d worker(s), %s each", threads, limit)
            yield client
    else:
        with Client(scheduler, timeout=60) as client:
            n = len(client.scheduler_info().get("workers", {}))
            log.info("dask: scheduler %s, %d worker(s)", scheduler, n)
            yield client


# ---------------------------------------------------------------------------------------
# partitions and their tasks (run on the workers: numpy, pandas and pyarrow only)
# ---------------------------------------------------------------------------------------


def partitions(
    path: str | os.PathLike, batch_rows: int = BATCH_ROWS
) -> list[tuple[list[int], int, int]]:
    """Runs of consecutive row groups of ``path`` of about ``batch_rows`` rows each.

    Returns
    -------
    list of (row groups, first row position, rows)
    """
    meta = pq.ParquetFile(path).metadata
    parts: list[tuple[list[int], int, int]] = []
    groups: list[int] = []
    start = rows = 0
    for g in range(meta.num_row_groups):
        groups.append(g)
        rows += meta.row_group(g).num_rows
        if rows >= batch_rows:
            parts.append((groups, start, rows))
            start, groups, rows = start + rows, [], 0
    if groups or not parts:
        parts.append((groups, start, rows))
    return parts


def _read(path: str, groups: list[int], columns: Sequence[str]):
    """Row groups ``groups`` of ``columns`` as pandas, converted as
    :meth:`~survival_framework.batches.ParquetColumns.batches` converts a batch."""
    pf = pq.ParquetFile(path)
    if groups:
        table = pf.read_row_groups(groups, columns=list(columns), use_pandas_metadata=True)
    else:
        table = pf.schema_arrow.empty_table().select(list(columns))
    frame = table.to_pandas()
    frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
    return frame[list(columns)].reset_index(drop=True)


def partition_statistics(
    path: str,
    groups: list[int],
    folds: np.ndarray,
    numeric: Sequence[str],
    categorical: Sequence[str],
    n_folds: int,
    sample_fraction: float,
    seed: Sequence[int],
) -> dict[str, Any]:
    """One partition's aggregates per test fold of every repeat.

    Parameters
    ----------
    path : str
        The clean table.
    groups : list of int
        The partition's row groups.
    folds : ndarray of int, shape (n_repeats, rows)
        Each row's test fold (0 .. K-1) in every repeat.
    numeric, categorical : sequence of str
    n_folds : int
    sample_fraction : float
        Share of the rows sampled for the median buckets.
    seed : sequence of int
        Seed of this partition's sample (the medians are exact whatever it is).

    Returns
    -------
    dict
        ``moments``: (3, n_repeats, n_folds, n_numeric) (:func:`.fold_stats.group_moments`);
        ``sample``: (rows sampled, n_numeric); ``levels``: column -> level (None: missing)
        -> (n_repeats, n_folds) counts.
    """
    frame = _read(path, groups, [*numeric, *categorical])
    n_repeats = folds.shape[0]
    moments = np.zeros((3, n_repeats, n_folds, len(numeric)))
    take = np.random.default_rng(list(seed)).random(len(frame)) < sample_fraction
    sample = np.empty((int(take.sum()), len(numeric)))
    for j, c in enumerate(numeric):
        x = frame[c].to_numpy(dtype=float)
        for r in range(n_repeats):
            moments[:, r, :, j] = fold_stats.group_moments(x, folds[r], n_folds)
        sample[:, j] = x[take]
    levels: dict[str, dict[str | None, np.ndarray]] = {}
    for c in categorical:
        codes, names = preprocess.level_codes(frame[c])
        cell = np.where(codes < 0, len(names), codes) * n_folds  # missing: the last level
        size = (len(names) + 1) * n_folds
        counts = np.stack(
            [np.bincount(cell + folds[r], minlength=size) for r in range(n_repeats)]
        ).reshape(n_repeats, len(names) + 1, n_folds)
        counts = counts.transpose(1, 0, 2)  # level -> (n_repeats, n_folds)
        levels[c] = {name: counts[i] for i, name in enumerate([*names, None]) if counts[i].any()}
    return {"moments": moments, "sample": sample, "levels": levels}


def _buckets(x: np.ndarray, splits: np.ndarray) -> np.ndarray:
    """Bucket of each value (``splits[b] <= x < splits[b + 1]``; +inf in the last); -1 for
    NaN."""
    b = np.minimum(np.searchsorted(splits, x, side="right") - 1, len(splits) - 2)
    return np.where(np.isnan(x), -1, b)


def partition_bucket_counts(
    path: str, groups: list[int], folds: np.ndarray, numeric: Sequence[str],
    splits: Sequence[np.ndarray], n_folds: int,
) -> list[np.ndarray]:  # fmt: skip
    """Non-missing rows per (repeat, test fold, median bucket) of each numeric column."""
    frame = _read(path, groups, numeric)
    out = []
    for c, s in zip(numeric, splits, strict=True):
        b = _buckets(frame[c].to_numpy(dtype=float), s)
        keep = b >= 0
        n_buckets = len(s) - 1
        out.append(
            np.stack(
                [
                    np.bincount(
                        folds[r][keep] * n_buckets + b[keep], minlength=n_folds * n_buckets
                    ).reshape(n_folds, n_buckets)
                    for r in range(folds.shape[0])
                ]
            )
        )
    return out


def partition_bucket_values(
    path: str, groups: list[int], folds: np.ndarray, numeric: Sequence[str],
    splits: Sequence[np.ndarray], wanted: dict[tuple[int, int], set[int]],
) -> dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    """The values in the wanted buckets: (repeat, column, bucket) -> (test folds, values).

    ``wanted``: (repeat, column) -> buckets that hold a median rank of some fold.
    """
    columns = sorted({j for _, j in wanted})
    frame = _read(path, groups, [numeric[j] for j in columns])
    out = {}
    for j in columns:
        x = frame[numeric[j]].to_numpy(dtype=float)
        b = _buckets(x, splits[j])
        for (r, jj), buckets in wanted.items():
            if jj == j:
                for bucket in buckets:
                    rows = b == bucket
                    out[(r, j, bucket)] = (folds[r][rows], x[rows])
    return out


def part_path(parts_dir: str | os.PathLike, index: int, resample: int, part: str) -> Path:
    """Where :func:`partition_write` writes partition ``index``'s ``part`` (train or test)
    rows of resample ``resample``."""
    return Path(parts_dir) / f"{index:06d}" / f"{resample}-{part}.arrow"


def partition_write(
    path: str,
    groups: list[int],
    folds: np.ndarray,
    schema: dict,
    states: Sequence[dict],
    parts_dir: str,
    index: int,
) -> None:
    """Transform one partition with every resample's state and write its train and test
    rows of each resample as an uncompressed Arrow IPC file (:func:`part_path`).

    ``folds``: (n_repeats, rows) test fold (0 .. K-1) of each row in every repeat;
    resample ``f`` is fold ``f % K`` of repeat ``f // K``. Each part holds the Arrow
    table the pandas path's chunked writer makes of a batch (the schema and pandas
    metadata of :func:`.batches.frame_table`, the arrays of :func:`.batches.arrays_table`),
    so the joined file is typed as the pandas path's. Arrow IPC, uncompressed: written and
    read back (memory-mapped) once, at the cost of a copy, where Parquet parts would be
    encoded twice.
    """
    import pandas as pd
    import pyarrow as pa

    from .batches import arrays_table, frame_table

    keys = key_columns(schema)
    frame = _read(path, groups, [*keys, *schema["numeric"], *schema["categorical"]])
    key_arrays = {c: frame[c].to_numpy() for c in keys}
    n_folds = len(states) // folds.shape[0]
    for f, state in enumerate(states):
        arrays = {**key_arrays, **preprocess.transform_columns(frame, state)}
        # the types and pandas metadata of the rows, as the writer's first chunk has them
        head = pd.DataFrame({c: a[:1] for c, a in arrays.items()})
        types = frame_table(head).schema
        test = folds[f // n_folds] == f % n_folds
        for part, rows in (("train", ~test), ("test", test)):
            table = arrays_table({c: a[rows] for c, a in arrays.items()}, types)
            out = part_path(parts_dir, index, f, part)
            out.parent.mkdir(parents=True, exist_ok=True)
            with pa.OSFile(str(out), "wb") as sink, pa.ipc.new_file(sink, types) as writer:
                writer.write_table(table)
        del arrays


# ---------------------------------------------------------------------------------------
# this process: states from the aggregates, the parts into the outputs
# ---------------------------------------------------------------------------------------


class _PartJoiner:
    """One output split file, appended one partition's part at a time (one row group each,
    as the pandas path's chunked writer writes its batches), each part checked to hold the
    ``_row`` values it must; ``n_rows``: the rows of the whole split."""

    def __init__(self, tmp: Path, target: Path, n_rows: int):
        self.tmp, self.target, self.n_rows = tmp, target, n_rows
        self.done = 0
        self.writer: pq.ParquetWriter | None = None
        self.empty = None  # the first (empty) part, written if no part has rows

    def append(self, part: Path, rows: np.ndarray) -> None:
        """Append the part file ``part``, which must hold the rows ``rows``, in order."""
        import pyarrow as pa

        with pa.memory_map(str(part)) as source:
            table = pa.ipc.open_file(source).read_all()
        if not np.array_equal(table.column(ROW_COL).to_numpy(), rows):
            raise RuntimeError(f"{self.target}: a Dask task wrote rows other than the split's")
        self.done += table.num_rows
        if table.num_rows == 0:
            self.empty = table if self.empty is None else self.empty
            return
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.tmp, table.schema)
        elif not table.schema.equals(self.writer.schema, check_metadata=False):
            table = table.cast(self.writer.schema)
        self.writer.write_table(table, row_group_size=table.num_rows)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        else:  # no row at all: an empty table, as pandas writes one
            pq.write_table(self.empty, self.tmp)
        if self.done != self.n_rows:
            raise RuntimeError(
                f"{self.target}: Dask tasks wrote {self.done} rows, the split has {self.n_rows}"
            )

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _fold_states_of_repeat(
    r: int, stats: list[dict], values: list[dict] | None,
    numeric: Sequence[str], categorical: Sequence[str], ranks: dict,
    fold_sizes: np.ndarray, min_frequency: float, max_levels: int | None,
) -> list[dict]:  # fmt: skip
    """Repeat ``r``'s K fold states from the partitions' aggregates (:mod:`.fold_stats`)."""
    n_folds = len(fold_sizes)
    moments = fold_stats.pool_moments([s["moments"][:, r] for s in stats])
    medians = np.full((n_folds, len(numeric)), np.nan)
    for j in range(len(numeric)):
        by_bucket: dict[int, list] = {}
        for v in values or ():
            for (rr, jj, b), pair in v.items():
                if (rr, jj) == (r, j):
                    by_bucket.setdefault(b, []).append(pair)

        def bucket_values(k: int, b: int, by_bucket=by_bucket) -> np.ndarray:
            pairs = by_bucket.get(b, [])
            return np.concatenate([x[f != k] for f, x in pairs]) if pairs else np.empty(0)

        medians[:, j] = fold_stats.medians_from_ranks(ranks[(r, j)], bucket_values, n_folds)
    level_counts: dict[str, dict[str | None, np.ndarray]] = {}
    for c in categorical:
        total: dict[str | None, np.ndarray] = {}
        for s in stats:
            for level, n in s["levels"][c].items():
                total[level] = total.get(level, 0) + n[r]
        level_counts[c] = total
    return fold_stats.fold_states(
        numeric, categorical, fold_sizes,
        {"n": moments[0], "mean": moments[1], "m2": moments[2]},
        medians, level_counts, min_frequency, max_levels,
    )  # fmt: skip


def _write_splits(
    client: Client, path: str, parts: list, groups: list, fold_parts: list, schema: dict,
    states: list[dict], folds: np.ndarray, row: np.ndarray,
    train_paths: Sequence, test_paths: Sequence, log: logging.Logger, t0: float,
) -> None:  # fmt: skip
    """Every resample's train and test file: one :func:`partition_write` task per partition,
    its parts appended in partition order as soon as it is done, while the workers write
    the next few (a window of twice the workers, plus one); the files appear on success
    only, and each partition's parts are removed once appended."""
    n_folds = len(states) // folds.shape[0]
    # beside the outputs: the deepest folder holding every split file
    out_dir = Path(os.path.commonpath([Path(p).resolve() for p in [*train_paths, *test_paths]]))
    parts_dir = out_dir / f".dask-parts-{os.getpid()}"
    # partitions written ahead of the one being joined: enough to keep every worker busy,
    # few enough that the parts on disk stay a few partitions' worth
    window = 2 * max(1, len(client.scheduler_info().get("workers", {}))) + 1

    def submit(i: int):
        return client.submit(
            partition_write, path, groups[i], fold_parts[i], schema, states, str(parts_dir), i,
            pure=False,
        )  # fmt: skip

    futures = {i: submit(i) for i in range(min(window, len(parts)))}
    # (resample, train or test, file); a row is in resample f's test split where its test
    # fold (global: repeat r's folds are r*K .. r*K+K-1) is f
    splits_out = [
        (f, part, Path(target))
        for f in range(len(states))
        for part, target in (("train", train_paths[f]), ("test", test_paths[f]))
    ]

    def in_split(f: int, part: str, at: slice) -> np.ndarray:
        return (folds[f // n_folds, at] == f) == (part == "test")

    try:
        with ExitStack() as stack:  # every split file appears on success only
            # the files are encoded in parallel threads (pyarrow releases the GIL): on a
            # cluster, this process's encoding is what the workers cannot share
            pool = stack.enter_context(
                ThreadPoolExecutor(min(len(splits_out), os.cpu_count() or 1))
            )
            joiners = [
                _PartJoiner(
                    stack.enter_context(atomic_path(target)), target,
                    int(in_split(f, part, slice(None)).sum()),
                )
                for f, part, target in splits_out
            ]  # fmt: skip
            try:
                # in partition order, while the workers write the next partitions
                for i, (_, start, n) in enumerate(parts):
                    futures.pop(i).result()
                    if i + window < len(parts):
                        futures[i + window] = submit(i + window)
                    at = slice(start, start + n)
                    appends = [
                        pool.submit(
                            joiner.append,
                            part_path(parts_dir, i, f, part), row[at][in_split(f, part, at)],
                        )
                        for (f, part, _), joiner in zip(splits_out, joiners, strict=True)
                    ]  # fmt: skip
                    for append in appends:
                        append.result()
                    shutil.rmtree(parts_dir / f"{i:06d}")
                    if (i + 1) % 10 == 0 or i + 1 == len(parts):
                        log.info(
                            "joined %d of %d partitions (%.1f s)",
                            i + 1, len(parts), time.perf_counter() - t0,
                        )  # fmt: skip
                for joiner in joiners:
                    joiner.close()
            except BaseException:
                client.cancel(list(futures.values()))
                pool.shutdown(wait=True, cancel_futures=True)  # no append still running
                for joiner in joiners:
                    joiner.abort()
                raise
    finally:
        shutil.rmtree(parts_dir, ignore_errors=True)


def run_dask_etl(
    client: Client,
    clean_path: str | os.PathLike,
    schema_path: str | os.PathLike,
    *,
    folds_path: str | os.PathLike,
    grid_path: str | os.PathLike,
    train_paths: Sequence[str | os.PathLike],
    test_paths: Sequence[str | os.PathLike],
    preprocessor_paths: Sequence[str | os.PathLike],
    n_folds: int,
    seed: int,
    min_frequency: float,
    n_times: int,
    quantiles: tuple[float, float],
    log: logging.Logger | None = None,
    max_levels: int | None = None,
    batch_rows: int = BATCH_ROWS,
    n_repeats: int = 1,
    sample_rows: int = 200_000,
) -> None:
    """Write folds, time grid and per-resample preprocessed splits with Dask.

    Same parameters and outputs as :func:`survival_framework.etl.run_pandas_etl`, plus the
    ``dask.distributed`` client and ``sample_rows`` (about how many rows place the median
    buckets; the medians are exact whatever it is).
    """
    check_split_paths(n_folds, train_paths, test_paths, preprocessor_paths, n_repeats)
    log = log or logging.getLogger(__name__)
    t0 = time.perf_counter()
    schema = read_json(schema_path)
    numeric, categorical = list(schema["numeric"]), list(schema["categorical"])
    read_table(clean_path, columns=[])  # the checks and messages of a whole read
    path = str(Path(clean_path).resolve())
    clean = ParquetColumns(clean_path)
    row = clean.column(ROW_COL).to_numpy()
    time_ = clean.column(schema["duration_col"]).to_numpy()
    event = clean.column(schema["event_col"]).to_numpy()
    check_keys(row, time_, event, schema)
    folds, grid = folds_and_grid(time_, event, n_folds, seed, n_times, quantiles, n_repeats)
    del time_, event
    folds = repeat_folds(folds)
    local = folds - (np.arange(n_repeats)[:, None] * n_folds)  # 0 .. K-1 in every repeat
    parts = partitions(path, batch_rows)
    log.info(
        "dask %s: %d rows in %d partitions, time grid %d points in [%g, %g] (%.1f s)",
        client.scheduler.address if client.scheduler else "?",
        row.size, len(parts), len(grid["times"]), grid["times"][0], grid["tau"],
        time.perf_counter() - t0,
    )  # fmt: skip

    def slices(a: np.ndarray) -> list[np.ndarray]:
        return [np.ascontiguousarray(a[:, s : s + n]) for _, s, n in parts]

    groups = [g for g, _, _ in parts]
    fold_parts = client.scatter(slices(local))
    fraction = min(1.0, sample_rows / max(row.size, 1))
    stats = client.gather(
        client.map(
            partition_statistics,
            [path] * len(parts), groups, fold_parts,
            [numeric] * len(parts), [categorical] * len(parts), [n_folds] * len(parts),
            [fraction] * len(parts), [(seed, i) for i in range(len(parts))],
            pure=False,
        )
    )  # fmt: skip
    sample = np.concatenate([s["sample"] for s in stats])
    splits = [fold_stats.median_bucket_splits(sample[:, j]) for j in range(len(numeric))]
    del sample
    ranks: dict[tuple[int, int], dict] = {}
    wanted: dict[tuple[int, int], set[int]] = {}
    values = None
    if numeric:
        counts = client.gather(
            client.map(
                partition_bucket_counts,
                [path] * len(parts), groups, fold_parts, [numeric] * len(parts),
                [splits] * len(parts), [n_folds] * len(parts), pure=False,
            )
        )  # fmt: skip
        for r in range(n_repeats):
            for j, s in enumerate(splits):
                total = sum(c[j][r] for c in counts)
                ranks[(r, j)], buckets = fold_stats.locate_median_ranks(total, s)
                if buckets:
                    wanted[(r, j)] = buckets
        if wanted:
            values = client.gather(
                client.map(
                    partition_bucket_values,
                    [path] * len(parts), groups, fold_parts, [numeric] * len(parts),
                    [splits] * len(parts), [wanted] * len(parts), pure=False,
                )
            )  # fmt: skip
    states = []
    for r in range(n_repeats):
        fold_sizes = np.bincount(local[r], minlength=n_folds)
        states += _fold_states_of_repeat(
            r, stats, values, numeric, categorical, ranks, fold_sizes,
            min_frequency, max_levels,
        )  # fmt: skip
    log.info("fitted %d fold states (%.1f s)", len(states), time.perf_counter() - t0)

    _write_splits(
        client, path, parts, groups, fold_parts, schema, states, folds, row,
        train_paths, test_paths, log, t0,
    )  # fmt: skip
    for f, state in enumerate(states):
        write_json(state, preprocessor_paths[f])
        test = folds[f // n_folds] == f
        log.info(
            "fold %d: %d train / %d test rows, %d features",
            f, int((~test).sum()), int(test.sum()), len(preprocess.output_columns(state)),
        )  # fmt: skip
    write_folds_and_grid(row, folds, grid, folds_path, grid_path)
