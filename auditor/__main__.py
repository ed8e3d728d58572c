"""``python -m auditor`` runs the ``controller-audit`` command line."""

from auditor.cli import main

main()
