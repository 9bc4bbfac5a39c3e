"""ORM queries compiled once per database connection, then re-run with new values.

Compiling a small ORM query (``filter`` → SQL) costs several times more than running it
against an indexed table, and on the API's hottest reads it was most of the request. A
:class:`Prepared` query is written with the ORM as usual — so the table, column and
converter knowledge stays Django's — compiled once per connection with placeholder
values, and re-run with the real values substituted into its parameters. Rows come
back through the ORM's own converters (JSON, encrypted fields...), and
:meth:`Prepared.instances` builds model instances with ``Model.from_db`` exactly as a
queryset would.

The query's shape (filters, tenant scoping) is fixed in code; only parameter values
change, so the compiled SQL cannot drift from what the ORM would have produced.

:func:`run_together` runs several prepared queries in one round trip to PostgreSQL
(psycopg pipeline mode); elsewhere (SQLite) one after the other.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import connections

__all__ = ["Prepared"]


class Prepared:
    """``build(**samples)`` returns a ``values_list`` queryset over ``model``'s fields
    (or any values_list); ``samples`` are distinctive placeholder values, one per
    parameter, that the compiled parameters are matched against."""

    def __init__(self, name: str, build: Callable, **samples) -> None:
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
            cached = (sql, tuple(params), positions, compiler,
                      compiler.get_converters(fields))
            setattr(conn, self._attr, cached)
        return conn, cached

    def _bound(self, alias: str, values: dict):
        conn, (sql, params, positions, compiler, converters) = self._compiled(alias)
        params = list(params)
        for i, name in positions:
            params[i] = values[name]
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

    def instances(self, model, attnames: list[str], alias: str = "default",
                  **values) -> list:
        """``rows`` as ``model`` instances (``attnames`` = the values_list columns)."""
        return [model.from_db(alias, attnames, row) for row in self.rows(alias, **values)]


def run_together(alias: str, *calls: tuple[Prepared, dict]) -> list[list]:
    """The converted rows of each ``(prepared, values)``, in order. On PostgreSQL the
    queries go to the server in one pipeline (one round trip instead of one each); they
    are plain reads, so running them together changes nothing but the wait."""
    conn = connections[alias]
    if conn.vendor != "postgresql" or len(calls) < 2:
        return [prepared.rows(alias, **values) for prepared, values in calls]
    bound = [prepared._bound(alias, values) for prepared, values in calls]
    conn.ensure_connection()
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
