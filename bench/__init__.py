"""Benchmarks of the running pipeline against its targets: `python -m bench` (docs/bench.md)."""
