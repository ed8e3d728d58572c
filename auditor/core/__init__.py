"""The core that checks and repairs stand on: connection, schema detection, settings, findings,
the check type and its registry, the shared passes.  It imports nothing of the audit engine, the
repairs, the reports or the command line (docs/architecture.md; tests/test_layers.py)."""
