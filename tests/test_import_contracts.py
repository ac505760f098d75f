"""The allow-list contract behind `make imports`: the core may import the standard library and
itself; anything else (a vendor SDK, or our own adapters and settings) breaks it."""

from __future__ import annotations

import grimp
import pytest

from tests.import_contracts import StandardLibraryOnly


def check(*imports: tuple[str, str]) -> list[str]:
    graph = grimp.ImportGraph()
    graph.add_module("bot.core")
    for importer, imported in imports:
        graph.add_import(importer=importer, imported=imported)
    contract = StandardLibraryOnly("core", {}, {"source_modules": ["bot.core"]})
    found: list[str] = contract.check(graph, verbose=False).metadata["found"]
    return found


def test_the_standard_library_and_the_core_itself_are_allowed() -> None:
    assert check(("bot.core.events", "json"), ("bot.core.events", "bot.core.routing")) == []


@pytest.mark.parametrize("imported", ["orjson", "sqlalchemy", "bot.settings", "bot.adapters.store"])
def test_anything_else_breaks_the_contract(imported: str) -> None:
    assert check(("bot.core.events", imported)) == [f"bot.core.events imports {imported}"]
