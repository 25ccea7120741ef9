#!/usr/bin/env python3
"""pandas reading a result straight from the mount, as CSV and as JSON.

    [MNT=/mnt/dune] pipeline_pandas.py QID           reads queries/QID/latest.{csv,json}
    pipeline_pandas.py DIR                           reads DIR/results.{csv,json}
                                                     (DIR: /mnt/dune/executions/<eid>)

CSV: pandas.read_csv(path) reads the file like any other: quoted commas and
line breaks included (CR/LF inside a field stays CR/LF), Redash's CRLF line ends
too. Both APIs write null as an empty cell, so only an empty cell is NaN here
(keep_default_na=False, na_values=[""]): by default pandas also turns text such
as "NA", "null" or "None" into NaN, which a label or a token symbol may be. An
integer too long for 64 bits (Dune's uint256 columns) leaves its column as
text (dtype object), so it gets no sum.

JSON: results.json / latest.json is one document, not a list of records, so
pandas.read_json does not fit it; json.load it and build the frame from its rows:
    dune:   {"execution_id": ..., "result": {"rows": [...], "metadata": {"column_names": [...]}}}
    redash: {"query_result": {"data": {"rows": [...], "columns": [{"name": ...}]}}}

Prints both frames' shapes, the sum of every numeric column from each, and
which columns hold the same values in both (Redash's CSV writes dates as
dd/mm/yy HH:MM, its JSON as ISO 8601, so a date column differs there).

Given a QID, latest.csv and latest.json are two opens of `latest`, each a
snapshot of the latest result at its open: a result landing between them would
make them differ. executions/<eid>/results.* never change.
"""
import json
import os
import sys

import pandas


def frame_from_json(path):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    if "query_result" in doc:  # redash
        data = doc["query_result"]["data"]
        return pandas.DataFrame(data["rows"], columns=[c["name"] for c in data["columns"]])
    result = doc["result"]  # dune
    return pandas.DataFrame(result["rows"], columns=result["metadata"]["column_names"])


def same_values(a, b):
    if len(a) != len(b) or not a.isna().equals(b.isna()):
        return False
    a, b = a[a.notna()], b[b.notna()]
    if pandas.api.types.is_numeric_dtype(a) != pandas.api.types.is_numeric_dtype(b):
        return False
    return bool((a == b).all())


def main(argv):
    args = argv[1:]
    if len(args) == 1 and args[0].isdigit():
        base = os.path.join(os.environ.get("MNT") or "/mnt/dune", "queries", args[0], "latest")
    elif len(args) == 1 and os.path.isdir(args[0]):
        base = os.path.join(args[0], "results")
    else:
        print(f"usage: [MNT=/mnt/dune] {argv[0]} QID\n"
              f"       {argv[0]} /mnt/dune/executions/EID", file=sys.stderr)
        return 2
    try:
        by_csv = pandas.read_csv(base + ".csv", keep_default_na=False, na_values=[""])
        by_json = frame_from_json(base + ".json")
    except OSError as e:  # ENODATA: never run; EIO: the run failed (see its error file)
        print(f"{argv[0]}: {e.filename}: {e.strerror}", file=sys.stderr)
        return 1
    for name, df in (("csv", by_csv), ("json", by_json)):
        print(f"{name}: {df.shape[0]} rows x {df.shape[1]} columns: {', '.join(map(str, df.columns))}")
    print("sums (csv, json):")
    for col in by_csv.columns:
        if pandas.api.types.is_numeric_dtype(by_csv[col]) and col in by_json:
            print(f"  {col}: {by_csv[col].sum():.15g} {pandas.to_numeric(by_json[col]).sum():.15g}")
    common = [c for c in by_csv.columns if c in by_json]
    same = [c for c in common if same_values(by_csv[c], by_json[c])]
    print(f"same in csv and json: {', '.join(same) or '-'}")
    print(f"different: {', '.join(c for c in common if c not in same) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
