#!/usr/bin/env python3
"""Keeps code blocks in docs identical to the example files that tests compile.

A block preceded by `<!-- include: PATH -->` must hold PATH's text exactly.
  tools/doc_snippets.py --check   exit 1 and name the stale blocks
  tools/doc_snippets.py --write   rewrite the blocks from the files
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = [ROOT / "docs" / "EMBEDDING.md"]
BLOCK = re.compile(r"(<!-- include: (?P<path>[^ ]+) -->\n```[a-z]*\n)(?P<body>.*?)(```)", re.S)


def main() -> int:
    write = "--write" in sys.argv
    stale = []
    for doc in DOCS:
        text = doc.read_text()

        def replace(m: re.Match) -> str:
            want = (ROOT / m.group("path")).read_text()
            if m.group("body") != want:
                stale.append(f"{doc.relative_to(ROOT)}: {m.group('path')}")
            return m.group(1) + want + m.group(4)

        new = BLOCK.sub(replace, text)
        if write and new != text:
            doc.write_text(new)
    if stale and not write:
        print("stale snippets (run tools/doc_snippets.py --write):", *stale, sep="\n  ")
        return 1
    print("doc snippets: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
