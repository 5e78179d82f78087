"""admin_api's registration: the `threadline api` command and the api component of `up`."""

from __future__ import annotations

from typing import Any

from core.registry import Component, Registry


def _serve(registry: Registry) -> None:
    import uvicorn

    from admin_api.app import create_app
    from core.cli.context import command_runtime

    with command_runtime(registry, need_redis=True) as runtime:
        s = runtime.settings
        config = uvicorn.Config(
            create_app(runtime), host=s.api_host, port=s.api_port, log_config=None,
            timeout_graceful_shutdown=5, access_log=False,
        )
        uvicorn.Server(config).run()


def register(registry: Registry) -> None:
    registry.add_component(
        Component(
            name="api",
            command=("api",),
            describe=lambda s: f"http://{s.api_host}:{s.api_port}  (/healthz /readyz /metrics /api/v1)",
            order=10,
        )
    )

    def add_cli(app: Any) -> None:
        app.command("api", help="Run the API server (admin API, health, metrics, Slack/widget endpoints).")(
            lambda: _serve(registry)
        )

    registry.add_cli(add_cli)
