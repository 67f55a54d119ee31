"""Merge `vdenoise bench --json` documents of the same data and protocol into one report.

A slow baseline can run apart from the models (or a run be split to fit a time budget) and
still give one table:

    python scripts/merge_bench.py a.json b.json --markdown table.md [--json all.json] [--plot p.png]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vdenoise.bench.report import markdown, merge, plot, to_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("documents", nargs="+", type=Path, help="bench --json outputs")
    parser.add_argument("--markdown", type=Path, help="write the tables here (else stdout)")
    parser.add_argument("--json", type=Path, help="also write the merged document here")
    parser.add_argument("--plot", type=Path, help="also write a PSNR-vs-sigma plot (PNG)")
    args = parser.parse_args()
    documents = []
    for path in args.documents:
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            sys.exit(f"error: {path}: {error}")
        if not isinstance(document, dict) or "scores" not in document:
            sys.exit(f"error: {path} is not a `vdenoise bench --json` document")
        documents.append(document)
    try:
        merged = merge(documents)
    except ValueError as error:
        sys.exit(f"error: {error}")
    merged.pop("schema_version", None)
    text = markdown(merged)
    if args.markdown:
        args.markdown.write_text(text)
    else:
        print(text, end="")
    if args.json:
        args.json.write_text(to_json(merged) + "\n")
    if args.plot:
        plot(merged, args.plot)


if __name__ == "__main__":
    main()
