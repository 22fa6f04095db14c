"""The benchmark: pingpong against raw nats-py request/reply and a bare aiohttp endpoint."""

from bench.harness import BenchOptions, run_bench

__all__ = ["BenchOptions", "run_bench"]
