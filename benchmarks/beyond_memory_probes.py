"""More collections and futures beyond memory: dist beside dask.distributed.

The same clusters as ``beyond_memory.py`` (one center/scheduler, two single-threaded workers
of ``--memory-limit`` each, default 400 MB), with workloads whose inputs are ``--factor``
(default 2) times the workers' memory together, each checked against an answer computed
another way:

* dataframes (``key, id, x, y`` rows generated per partition, never held by the client):
  ``set-index`` on ``id``, ``merge`` of two large frames on ``id`` (a hash join) and
  ``merge-small`` of a large frame with a small one, ``groupby-apply`` (10,000 small groups)
  and ``groupby-apply-large`` (groups of a tenth of a worker's limit), ``pipeline``
  (``read_parquet`` -> ``set_index`` -> a hash join on the index -> ``to_parquet``;
  ``pipeline-divisions``: the same with even divisions given),
  ``drop-duplicates``,
  ``nunique``, ``to-parquet`` of a frame that does not fit, ``read-parquet`` and
  ``read-csv`` of many files whose sum does not fit, reduced;
* arrays: ``rechunk`` from row chunks to column chunks, ``persist-reductions`` (persisted,
  then four reductions), ``persist-twice`` (persisted, then two computes: are spilled blocks
  read back, never made again?), ``to-npy-stack``, ``store-memmap`` (``da.store`` into a ``.npy``
  file opened as a memory map on the worker), ``xtx`` (``x.T @ x`` of a tall array),
  ``xxt-sum`` (``(x @ x.T).sum()`` of a wide one);
* futures: ``scatter-many`` (more data than the cluster holds, in one call), ``gather-big``
  (results larger than the cluster's memory gathered at once), ``map-stream`` (``map`` over
  many big results consumed with ``as_completed``), ``too-big`` (one result larger than a
  worker's limit: a clear error wanted, not a restart loop) and ``past-max-spill`` (one
  value larger than dist's ``--max-spill``: a clear error, the worker up).

    python benchmarks/beyond_memory_probes.py --workloads set-index,merge --systems dist
    python benchmarks/beyond_memory_probes.py --memory-limit 300MB --factor 3

Not a timed test: run it by hand; it needs dask[dataframe,array], distributed and pyarrow
(``benchmarks/setup.sh`` installs them into ``benchmarks/.venv``).
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from beyond_memory import Refused, outcome, run_system  # noqa: E402
from spill import write_report  # noqa: E402

MB = 10**6
KEYS = 10_000
ROW_BYTES = 32  # key, id, x, y: four 8-byte columns


def frame_part(i: int, rows: int, parts: int):
    """Partition ``i`` of a frame whose ids are ``0 .. rows * parts``, each once, spread so
    that every partition holds ids from the whole range."""
    import pandas as pd
    rng = np.random.default_rng(i)
    ids = np.arange(rows, dtype=np.int64) * parts + i
    rng.shuffle(ids)
    return pd.DataFrame({"key": rng.integers(0, KEYS, rows), "id": ids,
                         "x": rng.random(rows), "y": (ids % 1000).astype(np.float64)})


def other_part(i: int, rows: int, parts: int):
    """The right side of the hash join: ids ``i * rows .. (i + 1) * rows`` (contiguous, so
    laid out unlike ``frame_part``), ``w = 2 * id``."""
    import pandas as pd
    ids = np.arange(i * rows, (i + 1) * rows, dtype=np.int64)
    np.random.default_rng(500 + i).shuffle(ids)
    return pd.DataFrame({"id": ids, "w": 2.0 * ids})


def index_stats(frame):
    import pandas as pd
    index = frame.index.to_numpy()
    return pd.DataFrame({"rows": [len(frame)], "lo": [index.min() if len(index) else -1],
                         "hi": [index.max() if len(index) else -1],
                         "sorted": [bool(np.all(index[1:] >= index[:-1]))],
                         "xsum": [float(frame["x"].sum())]})


def spread(group):
    return group["x"].max() - group["x"].min()


def spread_and_count(group):
    import pandas as pd
    return pd.Series({"spread": group["x"].max() - group["x"].min(), "rows": len(group)})


def expected_frame(rows: int, parts: int) -> dict:
    """What the frame's workloads must find, computed a partition at a time."""
    count = np.zeros(KEYS, dtype=np.int64)
    xsum = np.zeros(KEYS)
    xmax = np.full(KEYS, -np.inf)
    xmin = np.full(KEYS, np.inf)
    total_x = 0.0
    for i in range(parts):
        part = frame_part(i, rows, parts)
        key, x = part["key"].to_numpy(), part["x"].to_numpy()
        count += np.bincount(key, minlength=KEYS)
        xsum += np.bincount(key, weights=x, minlength=KEYS)
        np.maximum.at(xmax, key, x)
        np.minimum.at(xmin, key, x)
        total_x += float(x.sum())
    return {"count": count, "xsum": xsum, "spread": xmax - xmin, "total_x": total_x}


class MemmapTarget:
    """A ``.npy`` file opened as a memory map where the block is written: what a user
    passes to ``da.store`` so that the array is not pickled with the task."""

    def __init__(self, path: str):
        self.path = path

    def __setitem__(self, where, block) -> None:
        array = np.load(self.path, mmap_mode="r+")
        array[where] = block
        array.flush()
        del array


def make_block(i: int, nbytes: int) -> np.ndarray:
    values = np.random.default_rng(i).random(nbytes // 8)
    values[0] = i
    return values


def first_and_sum(values: np.ndarray) -> tuple[float, float]:
    return float(values[0]), float(values.sum())


def counted_block(rows: int, cols: int, log: str, block_id=None) -> np.ndarray:
    """Block ``block_id`` of ``persist-twice``'s array; each computation of it leaves a line
    in ``log`` (the workers share this machine's disk), so that a block computed again
    rather than read back from a spill file shows."""
    with open(log, "a") as out:
        out.write(f"{block_id[0]}\n")
    return np.random.default_rng(block_id[0]).random((rows, cols))


def fill(nbytes: int) -> np.ndarray:
    return np.random.default_rng(nbytes).random(nbytes // 8)  # incompressible


def workloads(limit: int, factor: float, data_dir: Path) -> dict:
    import dask
    import dask.array as da
    import dask.dataframe as dd

    total = factor * 2 * limit
    parts = max(16, int(total / (25 * MB)))
    rows = int(total / ROW_BYTES / parts)
    frame_expected: dict = {}

    def frame():
        return dd.from_map(frame_part, range(parts), rows=rows, parts=parts)

    def expected():
        if not frame_expected:
            frame_expected.update(expected_frame(rows, parts))
        return frame_expected

    def set_index(client, compute, divisions=None):
        stats = compute(frame().set_index("id", divisions=divisions).map_partitions(
            index_stats, meta={"rows": "i8", "lo": "i8", "hi": "i8", "sorted": "bool",
                               "xsum": "f8"}))
        stats = stats[stats["rows"] > 0]
        if int(stats["rows"].sum()) != rows * parts:
            return f"{int(stats['rows'].sum())} rows, expected {rows * parts}"
        if not stats["sorted"].all() or not np.all(
                stats["lo"].to_numpy()[1:] > stats["hi"].to_numpy()[:-1]):
            return "not sorted"
        want = expected()["total_x"]
        return None if np.isclose(stats["xsum"].sum(), want, rtol=1e-9) else "sum of x differs"

    def set_index_divisions(client, compute):
        # even divisions given: dask's own from its quantiles are up to 2.8 times the mean
        # wide on this frame, and the sort of the widest needs more than a worker has
        n = rows * parts
        return set_index(client, compute, [int(i * n / parts) for i in range(parts)] + [n - 1])

    def merge(client, compute):
        right = dd.from_map(other_part, range(parts // 2), rows=rows, parts=parts)
        joined = frame()[["id", "y"]].merge(right, on="id")
        got = compute(joined.map_partitions(
            lambda f: f.assign(d=f["w"] - 2 * f["id"]).agg({"id": "count", "w": "sum",
                                                            "d": "sum"}).to_frame().T,
            meta={"id": "i8", "w": "f8", "d": "f8"}))
        n = rows * (parts // 2)  # ids 0 .. n are on both sides, once each
        if int(got["id"].sum()) != n:
            return f"{int(got['id'].sum())} rows, expected {n}"
        if got["d"].abs().sum() != 0 or not np.isclose(got["w"].sum(), n * (n - 1),
                                                         rtol=1e-12):
            return "joined the wrong rows"
        return None

    def merge_small(client, compute):
        import pandas as pd
        small = pd.DataFrame({"key": np.arange(KEYS), "weight": np.arange(KEYS) % 7})
        joined = frame().merge(small, on="key")
        got = compute((joined["x"] * joined["weight"]).sum())
        want = float((expected()["xsum"] * (np.arange(KEYS) % 7)).sum())
        return None if np.isclose(got, want, rtol=1e-9) else f"{got} != {want}"

    def groupby_apply(client, compute):
        got = compute(frame().groupby("key").apply(spread, meta=("x", "f8")))
        got = got.sort_index()
        want = expected()["spread"]
        if len(got) != KEYS or not np.allclose(got.to_numpy(), want, rtol=1e-12):
            return "spreads differ"
        return None

    def groupby_apply_large(client, compute):
        # few groups, each a tenth of a worker's limit: every group is handed to the
        # function whole, so a group must fit in a worker beside its shuffle's pieces
        groups = max(4, int(total / (limit / 10)))
        with_group = frame().assign(group=lambda f: f["id"] % groups)
        got = compute(with_group.groupby("group").apply(
            spread_and_count, meta={"spread": "f8", "rows": "i8"})).sort_index()
        xmax, xmin = np.full(groups, -np.inf), np.full(groups, np.inf)
        count = np.zeros(groups, dtype=np.int64)
        for i in range(parts):
            part = frame_part(i, rows, parts)
            group, x = part["id"].to_numpy() % groups, part["x"].to_numpy()
            np.maximum.at(xmax, group, x)
            np.minimum.at(xmin, group, x)
            count += np.bincount(group, minlength=groups)
        if len(got) != groups or not np.array_equal(got["rows"].to_numpy(), count):
            return "group sizes differ"
        return None if np.allclose(got["spread"].to_numpy(), xmax - xmin, rtol=1e-12) \
            else "spreads differ"

    def pipeline(client, compute, divisions=None):
        # what an analyst chains: parquet files read, indexed by id (a full shuffle, dask's
        # own divisions), joined with a second large frame on that index (a hash join) and
        # written back as parquet; the files written are then checked one by one
        folder = write_files("parquet")
        target = data_dir / "pipeline.parquet"
        shutil.rmtree(target, ignore_errors=True)
        right = dd.from_map(other_part, range(parts // 2), rows=rows, parts=parts)
        indexed = dd.read_parquet(str(folder))[["id", "x"]].set_index("id", divisions=divisions)
        joined = indexed.merge(right, left_index=True, right_on="id")
        compute(joined.to_parquet(str(target), compute=False))
        n = rows * (parts // 2)  # ids 0 .. n are on both sides, once each
        count, wsum, wrong = 0, 0.0, 0
        for path in sorted(target.glob("*.parquet")):
            import pandas as pd
            part = pd.read_parquet(path)
            count += len(part)
            wsum += float(part["w"].sum())
            wrong += int((part["w"] != 2 * part["id"]).sum())
        shutil.rmtree(target, ignore_errors=True)
        if count != n:
            return f"{count} rows written, expected {n}"
        if wrong or not np.isclose(wsum, n * (n - 1), rtol=1e-12):
            return "joined the wrong rows"
        return None

    def pipeline_divisions(client, compute):
        n = rows * parts
        return pipeline(client, compute, [int(i * n / parts) for i in range(parts)] + [n - 1])

    def drop_duplicates(client, compute):
        # (key, y) pairs: y is id % 1000, so there are at most 10 million of them
        got = compute(frame()[["key", "y"]].drop_duplicates(split_out=True).shape[0])
        want = 0
        seen = np.zeros((KEYS, 1000), dtype=bool)
        for i in range(parts):
            part = frame_part(i, rows, parts)
            seen[part["key"].to_numpy(), part["y"].to_numpy().astype(np.int64)] = True
        want = int(seen.sum())
        return None if got == want else f"{got} != {want}"

    def nunique(client, compute):
        got = compute(frame()["id"].nunique())
        return None if got == rows * parts else f"{got} != {rows * parts}"

    def to_parquet(client, compute):
        target = data_dir / "written.parquet"
        shutil.rmtree(target, ignore_errors=True)
        compute(frame().to_parquet(str(target), compute=False))
        got = dd.read_parquet(str(target))["x"].sum().compute(scheduler="threads")
        shutil.rmtree(target, ignore_errors=True)
        want = expected()["total_x"]
        return None if np.isclose(got, want, rtol=1e-9) else f"{got} != {want}"

    def write_files(kind: str) -> Path:
        folder = data_dir / f"many-{kind}-{rows}-{parts}"
        if not (folder / "done").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            for i in range(parts):
                part = frame_part(i, rows, parts)
                if kind == "parquet":
                    part.to_parquet(folder / f"part-{i:04d}.parquet", index=False)
                else:
                    part.to_csv(folder / f"part-{i:04d}.csv", index=False)
            (folder / "done").touch()
        return folder

    def read_parquet(client, compute):
        folder = write_files("parquet")
        got = compute(dd.read_parquet(str(folder)).groupby("key")["x"].sum())
        got = got.sort_index().to_numpy()
        return None if np.allclose(got, expected()["xsum"], rtol=1e-9) else "sums differ"

    def read_csv(client, compute):
        folder = write_files("csv")
        got = compute(dd.read_csv(str(folder / "*.csv")).groupby("key")["x"].sum())
        got = got.sort_index().to_numpy()
        return None if np.allclose(got, expected()["xsum"], rtol=1e-9) else "sums differ"

    side = int((total / 8) ** 0.5) // 1000 * 1000
    band = 500

    def square():
        return da.random.RandomState(0).random_sample((side, side), chunks=(band, side))

    def local(collection):
        with dask.config.set(num_workers=1):
            return collection.compute(scheduler="threads")

    def rechunk(client, compute):
        x = square().rechunk((side, band))
        got = compute(x.map_blocks(lambda b: b.sum(axis=0, keepdims=True),
                                   chunks=(1, band)).sum(axis=0))
        want = local(square().sum(axis=0))
        return None if np.allclose(got, want, rtol=1e-9) else "column sums differ"

    def persist_reductions(client, compute):
        x = client.persist(square())
        try:
            got = [compute(x.sum()), compute(x.std()), compute(x.max(axis=0).sum()),
                   compute(x[::7, ::3].mean())]
        finally:
            del x
        y = square()
        want = [local(y.sum()), local(y.std()), local(y.max(axis=0).sum()),
                local(y[::7, ::3].mean())]
        return None if np.allclose(got, want, rtol=1e-9) else f"{got} != {want}"

    def persist_twice(client, compute):
        # persisted larger than the cluster's memory, then computed twice: every block must
        # be made once, the computes reading spilled blocks back rather than making them again
        log = data_dir / "persist-twice.log"
        log.unlink(missing_ok=True)
        blocks, cols = parts, 1000
        rows = int(total / blocks / cols / 8)

        def array():
            return da.map_blocks(counted_block, dtype="f8", chunks=((rows,) * blocks, (cols,)),
                                 rows=rows, cols=cols, log=str(log))
        x = client.persist(array())
        try:
            got = [compute(x.sum()), compute((x.sum(axis=0) ** 2).sum())]
        finally:
            del x
        made = log.read_text().split()
        log.unlink()
        with dask.config.set(num_workers=1):  # the answers, one block at a time
            column_sums = sum(counted_block(rows, cols, os.devnull, (i,)).sum(axis=0)
                              for i in range(blocks))
        want = [float(column_sums.sum()), float((column_sums ** 2).sum())]
        extra = len(made) - blocks
        if not np.allclose(got, want, rtol=1e-9):
            return f"{got} != {want}"
        return f"{extra} blocks computed again" if extra else None

    def to_npy_stack(client, compute):
        folder = data_dir / "stack"
        shutil.rmtree(folder, ignore_errors=True)
        x = square()
        da.to_npy_stack(str(folder), x, axis=0)  # computes with the default scheduler
        got = local(da.from_npy_stack(str(folder)).sum())
        shutil.rmtree(folder, ignore_errors=True)
        want = local(square().sum())
        return None if np.isclose(got, want, rtol=1e-9) else f"{got} != {want}"

    def store_memmap(client, compute):
        path = data_dir / "stored.npy"
        np.lib.format.open_memmap(path, mode="w+", dtype="f8", shape=(side, side)).flush()
        compute(da.store(square(), MemmapTarget(str(path)), lock=False, compute=False))
        got = local(da.from_array(np.load(path, mmap_mode="r"), chunks=(band, side)).sum())
        path.unlink()
        want = local(square().sum())
        return None if np.isclose(got, want, rtol=1e-9) else f"{got} != {want}"

    def xxt_sum(client, compute):
        # (x @ x.T).sum(): x @ x.T is never held whole (a matrix of 10,000 squared); its sum
        # is the sum of the squares of x's column sums
        n, k = 10_000, int(total / 8 / 10_000) // 3000 * 3000

        def wide():
            return da.random.RandomState(2).random_sample((n, k), chunks=(1000, 3000))
        x = wide()
        got = compute((x @ x.T).sum())
        want = local((wide().sum(axis=0) ** 2).sum())
        return None if np.isclose(got, want, rtol=1e-9) else f"{got} != {want}"

    def tall():
        n = int(total / 8 / 1000) // 10_000 * 10_000
        return da.random.RandomState(1).random_sample((n, 1000), chunks=(10_000, 1000))

    def xtx(client, compute):
        x = tall()
        got = compute(x.T @ x)
        y = tall()
        want = local(y.T @ y)
        return None if np.allclose(got, want, rtol=1e-9) else "products differ"

    def scatter_many(client, compute):
        count = int(total / (50 * MB))
        blocks = [make_block(i, 50 * MB) for i in range(count)]
        try:
            futures = client.scatter(blocks)
        except ValueError as exc:
            return Refused(str(exc))
        del blocks
        got = client.gather(client.map(first_and_sum, futures))
        want = [first_and_sum(make_block(i, 50 * MB)) for i in range(count)]
        del futures
        return None if got == want else "sums differ"

    def gather_big(client, compute):
        count = int(total / (50 * MB))
        futures = client.map(make_block, range(count), nbytes=50 * MB)
        values = client.gather(futures)
        wrong = [i for i, v in enumerate(values) if v[0] != i]
        del futures, values
        return f"blocks {wrong} wrong" if wrong else None

    def map_stream(client, compute):
        from dist_client import as_completed as dist_as_completed
        count = int(2 * total / (50 * MB))
        futures = client.map(make_block, range(count), nbytes=50 * MB)
        wrong = 0
        if type(client).__module__.startswith("dist_client"):
            completed = dist_as_completed(futures)
        else:
            from distributed import as_completed
            completed = as_completed(futures)
        firsts = set()
        for future in completed:
            value = future.result()
            firsts.add(int(value[0]))
            wrong += value.shape != (50 * MB // 8,)
            futures.remove(future)
            del future, value
        return None if not wrong and firsts == set(range(count)) else "blocks wrong"

    def too_big(client, compute):
        future = client.submit(fill, int(1.3 * limit), pure=False)
        try:
            future.result(timeout=300)
        except Exception as exc:  # noqa: BLE001 -- the error the user sees is the outcome
            return Refused(f"{type(exc).__name__}: {exc}"[:300])
        return None

    def past_max_spill(client, compute):
        # dist's workers run this one with --max-spill of a fifth of their limit: each
        # worker is given a value past its target that its spill space cannot take
        futures = [client.submit(fill, int(0.75 * limit), pure=False) for _ in range(2)]
        try:
            sizes = [len(f.result(timeout=120)) for f in futures]
            after = client.submit(sum, [1, 2], pure=False).result(timeout=60)
        except Exception as exc:  # noqa: BLE001 -- the error the user sees is the outcome
            return Refused(f"{type(exc).__name__}: {exc}"[:300])
        finally:
            del futures
        return None if sizes == [int(0.75 * limit) // 8] * 2 and after == 3 else "wrong"

    return {"set-index": set_index, "set-index-divisions": set_index_divisions,
            "merge": merge, "merge-small": merge_small,
            "groupby-apply": groupby_apply, "groupby-apply-large": groupby_apply_large,
            "pipeline": pipeline, "pipeline-divisions": pipeline_divisions,
            "drop-duplicates": drop_duplicates,
            "nunique": nunique, "to-parquet": to_parquet, "read-parquet": read_parquet,
            "read-csv": read_csv, "rechunk": rechunk,
            "persist-reductions": persist_reductions, "persist-twice": persist_twice,
            "to-npy-stack": to_npy_stack,
            "store-memmap": store_memmap, "xtx": xtx, "xxt-sum": xxt_sum,
            "scatter-many": scatter_many,
            "gather-big": gather_big, "map-stream": map_stream, "too-big": too_big,
            "past-max-spill": past_max_spill}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", default="dist,dask")
    parser.add_argument("--memory-limit", default="400MB", help="per worker, in MB")
    parser.add_argument("--factor", type=float, default=2.0,
                        help="the inputs' size over the workers' memory together")
    parser.add_argument("--workloads", default="set-index,merge,merge-small,groupby-apply,"
                        "drop-duplicates,nunique,to-parquet,read-parquet,read-csv,rechunk,"
                        "persist-reductions,to-npy-stack,store-memmap,xtx,scatter-many,"
                        "gather-big,map-stream,too-big")
    parser.add_argument("--max-spill", default=None,
                        help="dist's --max-spill for every worker (past-max-spill: a fifth "
                        "of the limit)")
    parser.add_argument("--array-chunk-size", default=None,
                        help="dask's array.chunk-size while graphs are built (rechunk's "
                        "intermediate chunks; dask's default is 128MiB)")
    parser.add_argument("--data-dir", default=None, help="where input files are written")
    parser.add_argument("--output", default=str(HERE / "results" /
                                                 "beyond-memory-probes-latest.json"))
    args = parser.parse_args()
    # under ``timeout``: stop the clusters on the way out, as for any other error
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped by SIGTERM"))
    if args.array_chunk_size:
        import dask
        dask.config.set({"array.chunk-size": args.array_chunk_size})
    limit = int(float(args.memory_limit.upper().removesuffix("MB")) * MB)
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="dist-bench-probes-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    log_dir = Path(tempfile.mkdtemp(prefix="dist-bench-probes-logs-"))
    max_spill = args.max_spill or (str(limit // 5) if "past-max-spill" in args.workloads
                                   else None)
    options = ("--max-spill", max_spill) if max_spill else ()
    report = {"memory_limit": args.memory_limit, "factor": args.factor, "workers": 2,
              "threads_per_worker": 1, "cpus": os.cpu_count(), "systems": {}}
    table = workloads(limit, args.factor, data_dir)
    for system in args.systems.split(","):
        report["systems"][system] = run_system(system, args, log_dir, table, options)
    write_report(report, Path(args.output), log_dir, outcome)


if __name__ == "__main__":
    main()
