"""Reports: what findings, stories, blast radii and plans look like (table, JSON, Prometheus,
Nagios, text, HTML/SVG pictures).  On top of the core, the audit engine and the repairs; below the
command line."""
