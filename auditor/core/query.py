"""SQL templates: the one way SQL text is put together, with :mod:`psycopg.sql`.

A :class:`Query` is a ``psycopg.sql.SQL`` template with the constant parts of its own
placeholders (identifiers, constant texts, other queries); :meth:`Query.compose` fills them and
the scope fragments in one ``SQL.format``.  Values are never composed in: they are query
parameters (``%(grace_seconds)s``; a literal percent sign is ``%%``).  A literal brace is
``{{`` / ``}}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Union

from psycopg import sql

#: What a placeholder of a :class:`Query` is filled with.
Part = Union[sql.Composable, "Query"]


@dataclass(frozen=True)
class Query:
    """A SQL template and the parts of its own placeholders."""

    template: str
    parts: Mapping[str, Part] = field(default_factory=dict)

    def compose(self, **fragments: sql.Composable) -> sql.Composed:
        """The statement: this template's parts (queries composed with the same ``fragments``),
        then ``fragments`` (the runner's scope predicates) for the placeholders left."""
        own = {name: part.compose(**fragments) if isinstance(part, Query) else part for name, part in self.parts.items()}
        return sql.SQL(self.template).format(**{**fragments, **own})


def text(constant: str) -> sql.SQL:
    """A constant piece of SQL text (a word, a sentence inside a string literal): never input, and
    never a quote or a percent sign, which would end the literal or look like a parameter."""
    assert "'" not in constant and "%" not in constant, constant
    return sql.SQL(constant)


def union_all(queries: list[Query]) -> Query:
    """``queries`` joined by ``UNION ALL``, as one query."""
    template = "\nUNION ALL\n".join(f"{{q{i}}}" for i in range(len(queries)))
    return Query(template, {f"q{i}": q for i, q in enumerate(queries)})
