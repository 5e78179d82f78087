"""`--tenant` is required once there are several tenants: never "the first tenant"."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from core.cli.main import build_cli
from core.db.session import system_scope
from core.registry import Registry, load_plugins
from core.runtime import Runtime
from core.tenancy.models import Inbox
from tests.conftest import make_tenant
from tests.core.test_cli import _cli, env  # noqa: F401 (fixture)


def test_two_tenants_and_no_tenant_option_exit_2_with_the_reason_and_the_slugs(
    env: dict[str, str], runtime: Runtime  # noqa: F811
) -> None:
    a, _ = make_tenant(runtime)
    b, _ = make_tenant(runtime)
    out = _cli("tickets", "list", env=env)
    assert (out.returncode, "--tenant is required" in out.stderr) == (2, True)
    assert a.slug in out.stderr and b.slug in out.stderr
    assert _cli("tickets", "list", "--tenant", a.slug, env=env).returncode == 0
    assert _cli("tickets", "list", "--tenant", "nope", env=env).returncode == 2


# The slack, inbox (IMAP) and kb groups use the same rule (they once defaulted to the first tenant).
PER_TENANT_COMMANDS = (("slack", "disconnect"), ("inbox", "add", "new@acme.test"), ("kb", "list"))


def _in_process(environ: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_cli(load_plugins(Registry())), list(args), env=environ)
    return result.exit_code, result.output


@pytest.mark.parametrize("command", PER_TENANT_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_slack_inbox_and_kb_commands_need_tenant_when_there_are_several(
    env: dict[str, str], runtime: Runtime, command: tuple[str, ...]  # noqa: F811
) -> None:
    a, _ = make_tenant(runtime)
    b, _ = make_tenant(runtime)
    code, output = _in_process(env, *command)
    assert (code, "--tenant is required" in output, a.slug in output, b.slug in output) == (2, True, True, True)
    assert _in_process(env, *command, "--tenant", "nope")[0] == 2
    assert _in_process(env, *command, "--tenant", b.slug)[0] == 0
    if command[0] == "inbox":  # created for the tenant named, not the first one
        with system_scope(runtime.factory) as session:
            owner = session.execute(select(Inbox.tenant_id).where(Inbox.address == "new@acme.test")).scalar_one()
        assert owner == b.id


def test_with_one_tenant_the_commands_act_on_it(env: dict[str, str], runtime: Runtime) -> None:  # noqa: F811
    only, _ = make_tenant(runtime)
    assert _in_process(env, "inbox", "add", "new@acme.test")[0] == 0
    with system_scope(runtime.factory) as session:
        owner = session.execute(select(Inbox.tenant_id).where(Inbox.address == "new@acme.test")).scalar_one()
    assert owner == only.id
    assert [_in_process(env, *c)[0] for c in (("kb", "list"), ("slack", "disconnect"))] == [0, 0]
