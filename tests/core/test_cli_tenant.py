"""`--tenant` is required once there are several tenants: never "the first tenant"."""

from __future__ import annotations

from core.runtime import Runtime
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
