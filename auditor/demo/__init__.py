"""The demo: a controller database with a realistic story, audited and repaired for real.

Every step runs the real ``controller-audit`` command line in a subprocess, exactly as a
user would type it; nothing here takes a separate code path.  The parts: the story's rows
(:mod:`.story`), one step shown in a few lines (:mod:`.presenter`), the steps
(:mod:`.walkthrough`), and the run's server, databases, ``--keep`` and clean-up
(:mod:`.session`).
"""

from __future__ import annotations

from auditor.demo.session import GENERATIONS, parse_generation, run_demo
from auditor.demo.story import write_story

__all__ = ["GENERATIONS", "parse_generation", "run_demo", "write_story"]
