"""Repair planners: one module per repair (unshare, prune-orphans, restore-latest)."""
