"""controller-audit: audit and repair the database of the Deis / Hephy Workflow controller."""

__version__ = "0.1.0"
