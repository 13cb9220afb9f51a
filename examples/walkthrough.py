"""The seed walkthrough on a local cluster that this script starts (and stops) itself.

    python examples/walkthrough.py            # a local center and workers as subprocesses
    python examples/walkthrough.py HOST:PORT  # or an existing cluster
"""
import os
import sys
import tempfile

from dist_client import Executor


def inc(x):
    return x + 1


def double(x):
    return 2 * x


def show(label, value):
    print(f">>> {label:<58} # {value}")


def main(address=None):
    with Executor(address) as e:
        print(f"connected: {e!r}")
        future = e.submit(inc, 1)
        future.result()
        show("future = e.submit(inc, 1)", future)
        show("future.result()", future.result())
        futures = e.map(inc, range(5))
        show("e.gather(e.map(inc, range(5)))", e.gather(futures))
        show("e.submit(double, e.submit(inc, 1)).result()",
             e.submit(double, e.submit(inc, 1)).result())
        show("e.submit(sum, e.map(double, range(10))).result()",
             e.submit(sum, e.map(double, range(10))).result())
        show("e.scatter([1, 2, 3])", e.scatter([1, 2, 3]))
        try:
            import pandas as pd
        except ImportError:
            print("(pandas is not installed: skipping the read_csv line)")
            return
        with tempfile.TemporaryDirectory() as folder:
            filenames = []
            for day in range(3):
                name = os.path.join(folder, f"day{day}.csv")
                with open(name, "w") as f:
                    f.write("date,value\n")
                    f.writelines(f"2026-01-0{day + 1},{day * 10 + i}\n" for i in range(4))
                filenames.append(name)
            frames = e.map(pd.read_csv, e.scatter(filenames), parse_dates=["date"])
            lengths = e.gather(e.map(len, frames))
            show("e.map(pd.read_csv, e.scatter(filenames), parse_dates=['date'])",
                 f"{len(frames)} DataFrames on the workers, {sum(lengths)} rows")
            first = frames[0].result()
            show("frames[0].result().dtypes['date']", first.dtypes["date"])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
