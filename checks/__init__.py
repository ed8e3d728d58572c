"""The check catalogue: one module per check, each defining ``CHECK`` (see auditor.core.catalogue)."""
