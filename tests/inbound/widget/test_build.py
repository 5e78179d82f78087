"""The committed built assets are what the sources build to, and the loader stays small."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

WIDGET = Path(__file__).resolve().parents[3] / "inbound" / "widget"
ESBUILD = WIDGET / "js" / "node_modules" / ".bin" / "esbuild"


def test_the_loader_is_under_10_kb_gzipped() -> None:
    assert len(gzip.compress((WIDGET / "static" / "loader.js").read_bytes(), 9)) < 10 * 1024


def test_the_committed_assets_match_a_fresh_build(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not ESBUILD.exists():
        pytest.skip("node or esbuild missing: run `npm ci` in inbound/widget/js to check the built assets")
    subprocess.run([node, str(WIDGET / "js" / "build.mjs"), str(tmp_path)], check=True, timeout=120)
    for name in ("loader.js", "app.js"):
        fresh, committed = (tmp_path / name).read_bytes(), (WIDGET / "static" / name).read_bytes()
        assert fresh == committed, f"{name} is stale: run `npm run build` in inbound/widget/js"
