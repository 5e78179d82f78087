"""`threadline kb ...` as an operator runs it (the real command tree, real Postgres): one flow in this
process (a subprocess per command re-imports everything and reloads the model: 38 s in CI), and the
console script itself once, as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from core.db.migrate import upgrade
from core.db.session import make_engine, system_scope
from core.registry import Registry
from core.runtime import build_runtime
from core.settings import Settings
from core.tenancy.service import create_tenant
from tests.support.cli import Ran, run_cli
from tests.support.servers import PostgresForTests


def _kb(*args: str, env: dict[str, str]) -> Ran:
    return run_cli("kb", *args, env=env)


def _migrated(pg: PostgresForTests, owner_url: str) -> str:
    """Migrate as the owner; the CLI then runs as the runtime login, like in production."""
    engine = make_engine(owner_url, pool_size=1)
    upgrade(engine, runtime_url=pg.runtime_url(owner_url))
    engine.dispose()
    return pg.runtime_url(owner_url)


def test_ingest_twice_list_search_eval_delete(pg: PostgresForTests, tmp_path: Path) -> None:
    url = pg.create_database("tl_kbcli")
    url = _migrated(pg, url)
    rt = build_runtime(Settings(), database_url=url, redis_url=None, registry=Registry(), pool_size=1)
    with system_scope(rt.factory) as session:
        create_tenant(session=session, name="Acme")
    rt.close()
    env = {"DATABASE_URL": url, "THREADLINE_DATA_DIR": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "refunds.md").write_text("# Refunds\n\n## Annual plans\n\nAnnual plans are refunded pro rata in 30 days.")
    (docs / "sso.rst").write_text("Single sign-on\n==============\n\nSSO works with any SAML 2.0 identity provider.")
    (docs / "LICENSE").write_text("BSD")
    cases = tmp_path / "eval.jsonl"
    cases.write_text('{"q": "money back on a yearly plan", "doc": "refunds.md"}\n{"q": "SAML login", "doc": "sso.rst"}')

    first, second = _kb("ingest", str(docs), env=env), _kb("ingest", str(docs), env=env)
    listed = json.loads(_kb("list", "--json", env=env).stdout)
    question = "can I get my money back for a yearly plan?"
    hits = json.loads(_kb("search", question, "--json", "--top", "1", env=env).stdout)
    shown = _kb("search", question, "--top", "1", env=env).stdout
    evaluated = json.loads(_kb("eval", str(cases), "--json", env=env).stdout)
    deleted = _kb("delete", str(docs / "sso.rst"), env=env)

    assert (first.returncode, second.returncode, deleted.returncode) == (0, 0, 0)
    assert first.stdout.startswith("2 added") and second.stdout.startswith("0 added, 0 replaced, 2 unchanged")
    assert sorted((Path(d["source"]).name, d["title"], d["chunks"]) for d in listed) == [
        ("refunds.md", "Refunds", 1), ("sso.rst", "Single sign-on", 1)]
    assert [(Path(h["document"]).name, h["title"], h["heading"], h["text"]) for h in hits] == [
        ("refunds.md", "Refunds", "Refunds > Annual plans", "Annual plans are refunded pro rata in 30 days.")]
    assert [(r["name"].split(" ")[0], r["hit@1"]) for r in evaluated] == [
        ("hybrid", 1.0), ("vector", 1.0), ("full", 1.0), ("BM25", 1.0)]
    assert deleted.stdout.splitlines()[-1] == "1 document(s) deleted"
    # Regression: LICENSE was skipped silently, and nothing said what score and similarity mean.
    assert f"skipped {docs / 'LICENSE'}: not Markdown, reStructuredText, HTML or plain text (no extension)" in first.stderr
    assert shown.startswith("score: rank fusion of vector and full-text search")
    pg.drop_database(url)


def test_the_console_script_refuses_bad_usage_with_exit_2(tmp_path: Path) -> None:
    """The process boundary once: `python -m core.cli kb ...` parses, runs and exits with the code."""
    env = {**os.environ, "THREADLINE_DATA_DIR": str(tmp_path)}
    ran = subprocess.run([sys.executable, "-m", "core.cli", "kb", "ingest", str(tmp_path / "manual.pdf")], env=env,
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 2, ran.stderr
