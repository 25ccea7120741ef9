#!/usr/bin/env python3
"""Python's csv module reading a result straight from the mount.

    [MNT=/mnt/dune] pipeline_csv.py QID    reads $MNT/queries/QID/latest.csv
    pipeline_csv.py FILE.csv               any result file (executions/<eid>/results.csv)

Prints the row count and, per column, how many cells are empty, how many hold
a line break, and the sum when every non-empty cell is a number. A column of
integers is summed exactly, however long they are (Dune's uint256 columns hold
integers of 20 and more digits, which a float or a 64-bit integer would round or
overflow); a column with any decimal is summed as floats and printed to 15
significant digits.

The file is opened with newline="" as the csv module asks: then a quoted field
keeps its commas, doubled quotes and line breaks (CR/LF inside a field stays CR/LF),
and Redash's CRLF line ends are handled too. Opening the file is all it takes:
latest.csv is the query's latest result, and results.csv waits for its run.
"""
import csv
import os
import re
import sys

INTEGER = re.compile(r"[+-]?[0-9]+")
DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def number(text):
    """The cell as an int or a float, or None if it is not a number.
    (float() alone would also take "nan", "inf" and "1_000" as numbers.)"""
    if INTEGER.fullmatch(text):
        return int(text)
    if DECIMAL.fullmatch(text):
        return float(text)
    return None


def summarise(path, out=sys.stdout):
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        empty = [0] * len(header)
        multiline = [0] * len(header)
        sums = [0] * len(header)  # stays an exact int while every cell is one
        numeric = [True] * len(header)
        rows = 0
        for row in reader:
            rows += 1
            for i, cell in enumerate(row[:len(header)]):
                if cell == "":
                    empty[i] += 1
                    continue
                if "\n" in cell or "\r" in cell:
                    multiline[i] += 1
                value = number(cell) if numeric[i] else None
                if value is None:
                    numeric[i] = False
                else:
                    sums[i] += value
    print(f"file: {path}", file=out)
    print(f"rows: {rows}", file=out)
    print(f"{'column':<20} {'empty':>8} {'multiline':>10} {'sum':>20}", file=out)
    for i, name in enumerate(header):
        if not numeric[i] or rows == empty[i]:
            total = "-"
        elif isinstance(sums[i], int):
            total = str(sums[i])
        else:
            total = f"{sums[i]:.15g}"
        print(f"{name:<20} {empty[i]:>8} {multiline[i]:>10} {total:>20}", file=out)


def main(argv):
    args = argv[1:]
    if len(args) == 1 and args[0].endswith(".csv"):
        path = args[0]
    elif len(args) == 1 and args[0].isdigit():
        mnt = os.environ.get("MNT") or "/mnt/dune"
        path = os.path.join(mnt, "queries", args[0], "latest.csv")
    else:
        print(f"usage: [MNT=/mnt/dune] {argv[0]} QID\n"
              f"       {argv[0]} /mnt/dune/executions/EID/results.csv", file=sys.stderr)
        return 2
    try:
        summarise(path)
    except OSError as e:  # ENODATA: never run; EIO: the run failed (see its error file)
        print(f"{argv[0]}: {path}: {e.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
