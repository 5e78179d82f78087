"""`threadline doctor` says when Teams is half configured."""

from __future__ import annotations

from pathlib import Path

from core.runtime import Runtime
from tests.bots.teams.conftest import APP_ID
from tests.support.cli import run_cli
from tests.support.servers import RedisForTests


def test_doctor_names_a_teams_app_id_without_its_password(runtime: Runtime, redis_server: RedisForTests,
                                                         tmp_path: Path) -> None:
    res = run_cli("doctor", env={"DATABASE_URL": runtime.database_url, "REDIS_URL": redis_server.url,
                                 "THREADLINE_DATA_DIR": str(tmp_path), "TEAMS_APP_ID": APP_ID, "TEAMS_APP_PASSWORD": None})
    assert (res.returncode, "TEAMS_APP_PASSWORD" in res.stdout and "FAIL" in res.stdout) == (1, True)
