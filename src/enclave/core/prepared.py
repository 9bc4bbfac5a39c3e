"""ORM queries compiled once per database connection, then re-run with new values.

Compiling a small ORM query (``filter`` → SQL) costs several times more than running it
against an indexed table, and on the API's hottest reads it was most of the request. A
:class:`Prepared` query is written with the ORM as usual — so the table, column and
converter knowledge stays Django's — compiled once per connection with placeholder
values, and re-run with the real values substituted into its parameters. Rows come
back through the ORM's own converters (JSON, encrypted fields...), and callers build
model instances with ``Model.from_db`` exactly as a queryset would.

The query's shape (filters, tenant scoping) is fixed in code; only parameter values
change, so the compiled SQL cannot drift from what the ORM would have produced.

On PostgreSQL the SQL is also a server-side prepared statement (``PREPARE`` once per
database session, then ``EXECUTE``), because planning a join like the API key's
five-table lookup took longer than running it. Statements are session state, so they
are remembered per psycopg connection object (a reconnect prepares again); they survive
rollbacks, and they only read. A transaction-mode connection pooler that does not keep
sessions would lose them: Enclave connects to PostgreSQL directly.

:func:`run_together` sends several prepared queries to PostgreSQL in one round trip
(psycopg pipeline mode); elsewhere (SQLite) they run one after the other.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.db import connections

__all__ = ["Prepared", "run_together"]

class Prepared:
    """``build(**samples)`` returns a ``values_list`` queryset; ``samples`` are
    distinctive placeholder values, one per parameter, which must each appear exactly
    once among the compiled query's parameters."""

    def __init__(self, name: str, build: Callable, **samples) -> None:
        if not re.fullmatch(r"[a-z_]+", name):
            raise ValueError("prepared query names are lower-case identifiers")
        self.name = name
        self.build = build
        self.samples = samples
        self._attr = f"_enclave_prepared_{name}"

    def _compiled(self, alias: str):
        conn = connections[alias]
        cached = getattr(conn, self._attr, None)
        if cached is None:
            queryset = self.build(**self.samples).using(alias)
            compiler = queryset.query.get_compiler(using=alias)
            sql, params = compiler.as_sql()
            positions = [(i, name) for i, param in enumerate(params)
                         for name, sample in self.samples.items()
                         if type(param) is type(sample) and param == sample]
            if sorted(name for _, name in positions) != sorted(self.samples):
                raise RuntimeError(f"prepared query {self.name}: each placeholder must "
                                   "appear exactly once in the compiled parameters")
            fields = [col for col, _, _ in compiler.select[:compiler.col_count]]
            statement = None
            if conn.vendor == "postgresql" and "%%" not in sql:
                numbered = iter(range(1, len(params) + 1))
                statement = (f"enclave_{self.name}",
                             re.sub(r"%s", lambda _: f"${next(numbered)}", sql))
            cached = (sql, tuple(params), positions, compiler,
                      compiler.get_converters(fields), statement)
            setattr(conn, self._attr, cached)
        return conn, cached

    def _bound(self, alias: str, values: dict) -> tuple:
        """(connection, sql, params, compiler, converters) ready to execute."""
        conn, (sql, params, positions, compiler, converters, statement) = \
            self._compiled(alias)
        params = list(params)
        for i, name in positions:
            params[i] = values[name]
        if statement is not None:
            conn.ensure_connection()
            # The names prepared in this database session. Django's connection wrapper
            # is per thread; a reconnect gives it a new psycopg connection.
            session = getattr(conn, "_enclave_prepared_session", None)
            if session is None or session[0] is not conn.connection:
                session = (conn.connection, set())
                conn._enclave_prepared_session = session
            prepared = session[1]
            name, text = statement
            if name not in prepared:
                with conn.cursor() as cursor:
                    cursor.execute(f"PREPARE {name} AS {text}")
                prepared.add(name)
            sql = f"EXECUTE {name}({', '.join(['%s'] * len(params))})" if params \
                else f"EXECUTE {name}"
        return conn, sql, params, compiler, converters

    @staticmethod
    def _converted(rows, compiler, converters) -> list:
        if converters and rows:
            rows = list(compiler.apply_converters([list(r) for r in rows], converters))
        return rows

    def rows(self, alias: str = "default", **values) -> list:
        """The converted rows for ``values`` (one per placeholder)."""
        conn, sql, params, compiler, converters = self._bound(alias, values)
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        return self._converted(rows, compiler, converters)


def run_together(alias: str, *calls: tuple[Prepared, dict]) -> list[list]:
    """The converted rows of each ``(prepared, values)``, in order. On PostgreSQL the
    queries go to the server in one pipeline (one round trip instead of one each); they
    are plain reads, so running them together changes nothing but the wait."""
    conn = connections[alias]
    if conn.vendor != "postgresql" or len(calls) < 2:
        return [prepared.rows(alias, **values) for prepared, values in calls]
    bound = [prepared._bound(alias, values) for prepared, values in calls]
    cursors = []
    try:
        with conn.connection.pipeline():
            for _, sql, params, _, _ in bound:
                cursor = conn.cursor()
                cursors.append(cursor)
                cursor.execute(sql, params)
        return [Prepared._converted(cursor.fetchall(), compiler, converters)
                for cursor, (_, _, _, compiler, converters) in zip(cursors, bound,
                                                                   strict=True)]
    finally:
        for cursor in cursors:
            cursor.close()
