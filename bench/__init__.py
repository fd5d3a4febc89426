"""Benchmarks run by hand; see bench/bench_model.py."""
