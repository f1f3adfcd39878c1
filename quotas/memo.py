"""A process's small memory of answers that cannot change, oldest out first.

The callers key it by what makes an answer final (hours that are over, roll-ups
by their highest id and count), so nothing is ever invalidated: a changed
input is a new key, and the old entry is pushed out. The database's name is
part of every key: the tests and the tools switch databases in one process.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from django.db import connection

V = TypeVar("V")


class Memo(Generic[V]):
    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: dict[tuple, V] = {}

    def get(self, key: tuple[Hashable, ...], compute: Callable[[], V]) -> V:
        key = (connection.settings_dict["NAME"], *key)
        found = self.entries.get(key)
        if found is None:
            found = compute()
            if len(self.entries) >= self.size:
                del self.entries[next(iter(self.entries))]
            self.entries[key] = found
        return found

    def clear(self) -> None:
        self.entries.clear()
