"""Benchmark at production scale: a synthetic controller database and the harness that times the tool."""
