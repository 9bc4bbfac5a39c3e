"""A value a test (or a drill) may swap for the duration of a ``with`` block — the one
way services, key stores and journals let tests point them elsewhere."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Override(Generic[T]):
    """``value`` is None until :meth:`use` installs one; nested uses restore in order."""

    def __init__(self) -> None:
        self.value: T | None = None

    @contextlib.contextmanager
    def use(self, value: T) -> Iterator[T]:
        previous, self.value = self.value, value
        try:
            yield value
        finally:
            self.value = previous
