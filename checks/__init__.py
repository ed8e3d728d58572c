"""The check catalogue: one module per check, each defining ``CHECK`` (see auditor.catalogue)."""
