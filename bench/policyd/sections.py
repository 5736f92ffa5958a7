"""Named sections of RESULTS.md that one script writes and the others keep.

run.py rewrites RESULTS.md from its own results; burst.py and fault.py each own
a section between ``<!-- section:NAME -->`` and ``<!-- /section:NAME -->``,
which a rewrite by another script carries over unchanged.
"""

from __future__ import annotations

import re
from pathlib import Path

_SECTION = re.compile(r"<!-- section:(\S+) -->\n.*?<!-- /section:\1 -->\n", re.S)


def sections(text: str) -> list[str]:
    """Every marked section of a RESULTS.md text, in order, markers included."""
    return [m.group(0) for m in _SECTION.finditer(text)]


def replace_section(path: Path, name: str, body: str) -> None:
    """Put `body` in the section `name` of `path`, appending the section if it is new."""
    block = f"<!-- section:{name} -->\n{body.rstrip()}\n<!-- /section:{name} -->\n"
    text = path.read_text() if path.exists() else ""
    for m in _SECTION.finditer(text):
        if m.group(1) == name:
            path.write_text(text[: m.start()] + block + text[m.end() :])
            return
    path.write_text(text.rstrip() + "\n\n" + block if text else block)
