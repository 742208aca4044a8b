"""Copy each example file into the docs blocks marked `<!-- example: PATH -->` (tests check they match)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- example: (?P<path>[^ ]+) -->\n```[a-z]*\n)(?P<code>.*?)(```)", re.S)

for page in sorted((ROOT / "docs").glob("*.md")):
    text = page.read_text()
    synced = BLOCK.sub(lambda m: m.group(1) + (ROOT / m["path"]).read_text() + m.group(4), text)
    if synced != text:
        page.write_text(synced)
        print(f"synced {page.relative_to(ROOT)}")
