"""Rewrite the settings table in README.md from core.settings.SETTING_DOCS (run after adding one)."""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core.settings import SETTING_DOCS  # noqa: E402

readme = Path(__file__).resolve().parents[1] / "README.md"
table = "| variable | meaning |\n|---|---|\n" + "\n".join(f"| `{k}` | {v} |" for k, v in SETTING_DOCS.items())
text = readme.read_text()
text = re.sub(r"\| variable \| meaning \|\n\|---\|---\|\n(\|.*\|\n?)+", table + "\n", text)
readme.write_text(text)
