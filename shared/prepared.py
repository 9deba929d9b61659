"""Queries that run on every page, turned into SQL once per database instead of per request.

peewee builds the SQL text of a query each time it runs it; for a joined query that
takes longer than SQLite needs to answer it (0.2–0.8 ms against 0.05 ms, measured in
bench/README.md). A ``PreparedSelect`` builds its query once with example arguments,
notes where each example landed among the parameters, and from then on only puts the
real values in their places. Rows come out as the query would give them (models with
their joined models, tuples, dicts).

The examples must be values the query does not contain otherwise, and each must reach
the SQL unchanged: pass what the query compares with (a hash, not the key it is made
from), and give arguments distinct examples.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from peewee import BaseQuery, Database

from shared.db import database


@dataclass(frozen=True)
class _Compiled:
    query: BaseQuery
    sql: str
    params: tuple
    slots: tuple[tuple[int, int], ...]  # (position among the parameters, argument index)


class PreparedSelect:
    """``build(*arguments)`` made once per database; ``run(*arguments)`` executes it."""

    def __init__(self, build: Callable[..., BaseQuery], *examples: object) -> None:
        self._build = build
        self._examples = examples
        self._compiled: weakref.WeakKeyDictionary[Database, _Compiled] = weakref.WeakKeyDictionary()

    def run(self, *arguments: object):
        """The query's cursor wrapper for ``arguments``: iterate it, or ``list()`` it."""
        if len(arguments) != len(self._examples):
            raise TypeError(f"expected {len(self._examples)} arguments, got {len(arguments)}")
        db = database.obj
        compiled = self._compiled.get(db)
        if compiled is None:
            compiled = self._compiled[db] = self._compile()
        params = list(compiled.params)
        for position, index in compiled.slots:
            params[position] = arguments[index]
        return compiled.query._get_cursor_wrapper(db.execute_sql(compiled.sql, params))

    def first(self, *arguments: object):
        """The first row for ``arguments``, or None."""
        return next(iter(self.run(*arguments)), None)

    def _compile(self) -> _Compiled:
        query = self._build(*self._examples)
        sql, params = query.sql()
        slots = tuple(
            (position, index)
            for position, value in enumerate(params)
            for index in _matching(self._examples, value)
        )
        found = {index for _position, index in slots}
        missing = [
            self._examples[index] for index in range(len(self._examples)) if index not in found
        ]
        if missing:
            raise ValueError(f"example arguments not found among the query's parameters: {missing}")
        return _Compiled(query, sql, tuple(params), slots)


def _matching(examples: Sequence[object], value: object) -> list[int]:
    matches = [
        index
        for index, example in enumerate(examples)
        if type(example) is type(value) and example == value
    ]
    if len(matches) > 1:
        raise ValueError(f"two example arguments are equal ({value!r}); make them distinct")
    return matches
