#!/usr/bin/env python3
"""What Dune's official clients do with a result, as a baseline for execfs.

Pages through an execution's JSON result with urllib (GET
/execution/<eid>/results?limit=N&allow_partial_results=true, then each page's
next_uri), keeps every page's rows in memory, then writes them as CSV with the
csv module, columns in the order of metadata.column_names. The API key comes
from the DUNE_API_KEY environment variable, never from the command line.

    DUNE_API_KEY=... /usr/bin/python3 bench/official_client.py \\
        http://127.0.0.1:8080/api/v1 <execution id> out.csv [--limit 32000]
"""
import argparse
import csv
import json
import os
import sys
import urllib.request


def fetch_rows(base_url, execution_id, key, limit):
    """Every row of the result (dicts) and the first page's metadata."""
    url = (f"{base_url}/execution/{execution_id}/results"
           f"?limit={limit}&allow_partial_results=true")
    rows, metadata = [], None
    while url:
        req = urllib.request.Request(url, headers={"X-Dune-API-Key": key})
        with urllib.request.urlopen(req, timeout=300) as resp:
            doc = json.load(resp)
        result = doc["result"]
        rows.extend(result["rows"])
        if metadata is None:
            metadata = result["metadata"]
        url = doc.get("next_uri")
    return rows, metadata


def write_csv(path, column_names, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(column_names)
        for row in rows:
            out.writerow([row.get(name) for name in column_names])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base_url", help="the API's base, e.g. http://127.0.0.1:8080/api/v1")
    ap.add_argument("execution_id")
    ap.add_argument("output", help="the CSV file to write")
    ap.add_argument("--limit", type=int, default=32000, help="rows per page")
    args = ap.parse_args()
    key = os.environ.get("DUNE_API_KEY")
    if not key:
        sys.exit("official_client.py: set DUNE_API_KEY")
    rows, metadata = fetch_rows(args.base_url.rstrip("/"), args.execution_id, key, args.limit)
    write_csv(args.output, metadata["column_names"], rows)


if __name__ == "__main__":
    main()
