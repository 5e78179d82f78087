"""Every corpus message through `threadline ingest-eml`: no crash; the unparseable stored and flagged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest

from core.db.migrate import upgrade
from core.db.session import make_engine, system_scope
from core.db.session import make_session_factory
from core.tenancy.service import bootstrap
from tests.inbound.email.corpora import corpora_root, data_files
from tests.support.servers import PostgresForTests

pytestmark = pytest.mark.slow


def test_every_corpus_file_goes_through_ingest_eml_without_a_crash(pg: PostgresForTests, tmp_path) -> None:  # type: ignore[no-untyped-def]
    files = data_files()
    if not files:
        pytest.skip(f"no corpora under {corpora_root()} (set THREADLINE_CORPORA)")
    url = pg.create_database("tl_corpus")
    engine = make_engine(url, pool_size=1)
    upgrade(engine, runtime_url=pg.runtime_url(url))  # migrated by the owner, as `threadline migrate` does
    with system_scope(make_session_factory(engine)) as session:
        bootstrap(session=session, support_address="help@acme.test", slack_channel=None)
    engine.dispose()
    env = {**os.environ, "DATABASE_URL": pg.runtime_url(url), "THREADLINE_DATA_DIR": str(tmp_path), "THREADLINE_SENDER_CAP": "100000",
           "THREADLINE_TICKET_CAP": "100000", "THREADLINE_LOG_LEVEL": "ERROR"}
    proc = subprocess.run(
        [sys.executable, "-m", "core.cli", "ingest-eml", *map(str, files)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    statuses = Counter(line["status"] for line in lines)
    failed = [line for line in lines if line["status"] == "failed"]
    print(f"\n{len(files)} files: {dict(statuses)}")
    for f in failed:
        print("FAILED", f.get("file"), f.get("error", "")[:300])
    pg.drop_database(url)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(lines) == len(files)
    # The only acceptable failure is "unparseable": stored raw and flagged, never a crash.
    assert [f for f in failed if not f["error"].startswith("unparseable")] == []
