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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from peewee import BaseQuery, Database

from shared.db import database

# A cursor wrapper's attributes that belong to one execution; the rest it works out from
# the query and the cursor's columns on its first row, the same for every execution.
_PER_EXECUTION = frozenset(("cursor", "count", "index", "initialized", "populated", "row_cache"))


@dataclass(frozen=True)
class _Compiled:
    query: BaseQuery
    sql: str
    params: tuple
    slots: tuple[tuple[int, int], ...]  # (position among the parameters, argument index)
    # How peewee maps this query's columns to row objects, once it has worked it out:
    # appended whole (one step under the GIL), so a thread sees it complete or not at all.
    row_building: list[dict] = field(default_factory=list, compare=False)

    def filled(self, arguments: tuple) -> list:
        params = list(self.params)
        for position, index in self.slots:
            params[position] = arguments[index]
        return params


@dataclass(frozen=True)
class Fetched:
    """A query's rows as the database gave them: plain values, compared and hashed as such.

    Pages that keep rendered lists (``portal/fragments.py``) look them up by these values
    and build peewee's row objects only when they must render anew.
    """

    query: BaseQuery = field(compare=False, repr=False)
    description: tuple = field(compare=False, repr=False)
    raw: tuple[tuple, ...]

    @classmethod
    def read(cls, query: BaseQuery, cursor) -> Fetched:
        """Every row left in ``cursor``, which ran ``query``."""
        return cls(query, cursor.description, tuple(cursor.fetchall()))

    def rows(self) -> list:
        """The rows as the query would give them (models, tuples, dicts)."""
        return list(self.query._get_cursor_wrapper(_Replay(self.description, self.raw)))


def fetch(query: BaseQuery) -> Fetched:
    """All rows of any ``query`` as the database gave them (see ``Fetched``)."""
    return Fetched.read(query, database.obj.execute(query))


class _Replay:
    """Just enough of a DB-API cursor for peewee's row building, over rows already read."""

    def __init__(self, description: tuple, rows: tuple[tuple, ...]) -> None:
        self.description = description
        self._rows = iter(rows)

    def fetchone(self) -> tuple | None:
        return next(self._rows, None)

    def close(self) -> None:
        pass


class PreparedSelect:
    """``build(*arguments)`` made once per database; ``run(*arguments)`` executes it."""

    def __init__(self, build: Callable[..., BaseQuery], *examples: object) -> None:
        self._build = build
        self._examples = examples
        self._compiled: weakref.WeakKeyDictionary[Database, _Compiled] = weakref.WeakKeyDictionary()

    def run(self, *arguments: object) -> Iterator:
        """The rows for ``arguments``, one by one, as the query gives them (models, tuples…).

        peewee works out how to build row objects (which column goes to which joined
        model, with which converter) on each execution's first row; for a joined query
        that costs more than building the row. It is the same every time: kept.
        """
        compiled, cursor = self._execute(arguments)
        wrapper = compiled.query._get_cursor_wrapper(cursor)
        if compiled.row_building:
            wrapper.__dict__.update(compiled.row_building[0])
            wrapper.initialized = True
        for row in wrapper.iterator():
            if not compiled.row_building:
                compiled.row_building.append(
                    {
                        name: value
                        for name, value in vars(wrapper).items()
                        if name not in _PER_EXECUTION
                    }
                )
            yield row

    def _execute(self, arguments: tuple) -> tuple[_Compiled, object]:
        if len(arguments) != len(self._examples):
            raise TypeError(f"expected {len(self._examples)} arguments, got {len(arguments)}")
        db = database.obj
        compiled = self._compiled.get(db)
        if compiled is None:
            compiled = self._compiled[db] = self._compile()
        return compiled, db.execute_sql(compiled.sql, compiled.filled(arguments))

    def first(self, *arguments: object):
        """The first row for ``arguments``, or None."""
        return next(iter(self.run(*arguments)), None)

    def fetch(self, *arguments: object) -> Fetched:
        """All rows for ``arguments`` as the database gave them; objects only when asked."""
        compiled, cursor = self._execute(arguments)
        return Fetched.read(compiled.query, cursor)

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
