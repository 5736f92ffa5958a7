"""A quick smoke test of the benchmark's load generator and minimal daemon (not the benchmark)."""

from __future__ import annotations

import asyncio

from support.bench import bench_module


def test_loadgen_against_the_minimal_daemon() -> None:
    loadgen, minimal = bench_module("loadgen"), bench_module("minimal_daemon")

    async def main() -> object:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(minimal.Minimal, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        payloads = [loadgen.policy_request("bench-0", "a@bench-0.example", "u@example.org")]
        try:
            return await loadgen.run_load(f"127.0.0.1:{port}", 4, 403, payloads)
        finally:
            server.close()

    result = asyncio.run(main())
    assert result.requests == 403 and result.connections == 4  # type: ignore[attr-defined]
    assert result.answers == {"action=DUNNO": 403}  # type: ignore[attr-defined]
    assert 0 < result.p50_ms <= result.p99_ms  # type: ignore[attr-defined]
