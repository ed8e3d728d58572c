"""Pictures of the damage: an app's history as a timeline (SVG, HTML), a plan's before and
after, and a one-page HTML report of a whole audit.

:mod:`auditor.reports.picture.graph` turns an :class:`auditor.audit.story.AppStory` and its findings into
nodes and edges, :mod:`auditor.reports.picture.layout` places them on a timeline (collapsing runs of
healthy releases), :mod:`auditor.reports.picture.render` writes SVG and HTML from the package's Jinja2
templates (autoescaped: app names, summaries and config values are hostile input).
"""
