"""App histories shared by the check tests: what the controller writes when nothing goes wrong."""

from __future__ import annotations

from auditor.testbed.builder import App, Controller


def linear_history(app: App, steps: int) -> None:
    """Alternate ``config:set`` and pushes, starting with a push: the everyday history."""
    for step in range(steps):
        if step % 2 == 0:
            app.push(image=f"{app.name}:{step}")
        else:
            app.config_set(STEP=str(step))


def healthy_app(ctl: Controller, index: int, rollbacks: bool = False) -> App:
    """App number ``index`` with one of several undamaged histories (chosen by ``index``).

    Kinds: v1 only; config-only releases before the first build; a linear history of 2-6
    steps; with ``rollbacks``, a linear history ending in a rollback to the release before
    the last.
    """
    app = ctl.create_app(f"app-{index:05d}")
    kind = index % 4
    if kind == 1:
        app.config_set(A="1")
        app.config_set(B="2")
    elif kind >= 2:
        linear_history(app, 2 + index % 5)
        if rollbacks and kind == 3:
            last = app.current().version
            app.rollback(last - 1)
    return app
