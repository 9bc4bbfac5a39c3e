"""Helpers for reading rendered pages in tests."""

from __future__ import annotations

from html.parser import HTMLParser


class TableRows(HTMLParser):
    """Collects the text of every ``<tr>`` of a page as a list of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def table_rows(html: str) -> dict[str, list[str]]:
    """Rows of the page's tables keyed by their first cell (e.g. a control id)."""
    parser = TableRows()
    parser.feed(html)
    return {row[0]: row for row in parser.rows if row}
