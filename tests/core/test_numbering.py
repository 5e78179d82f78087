"""Per-tenant ticket numbers never collide, even with many concurrent creators."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from core.runtime import Runtime
from tests.conftest import make_tenant
from tests.core.factories import make_ticket


def test_concurrent_creators_get_unique_gapless_numbers(runtime: Runtime) -> None:
    tenant, inbox = make_tenant(runtime)
    threads, per_thread = 8, 25

    def create(worker: int) -> list[int]:
        return [
            make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id, customer=f"c{worker}-{i % 3}@example.test")[1]
            for i in range(per_thread)
        ]

    with ThreadPoolExecutor(threads) as pool:
        numbers = [n for chunk in pool.map(create, range(threads)) for n in chunk]
    assert sorted(numbers) == list(range(1, threads * per_thread + 1))


def test_each_tenant_counts_from_one(runtime: Runtime) -> None:
    a, inbox_a = make_tenant(runtime)
    b, inbox_b = make_tenant(runtime)
    got = [
        make_ticket(runtime, tenant_id=a.id, inbox_id=inbox_a.id)[1],
        make_ticket(runtime, tenant_id=b.id, inbox_id=inbox_b.id)[1],
        make_ticket(runtime, tenant_id=a.id, inbox_id=inbox_a.id)[1],
    ]
    assert got == [1, 1, 2]
