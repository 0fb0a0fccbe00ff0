"""Benchmark suite for mcrgraph: ``python -m benchmarks [--quick]`` from the project root.
See benchmarks/README.md for what each figure means."""
