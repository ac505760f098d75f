"""An import-linter contract type of our own: an allow-list where import-linter's built-in types
are deny-lists. `bot.core` may import the standard library and itself, and nothing else: a new
vendor SDK there fails `make imports` without anyone having to remember to forbid it."""

from __future__ import annotations

import sys

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output


class StandardLibraryOnly(Contract):
    type_name = "standard_library_only"

    source_modules = fields.ListField(subfield=fields.StringField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        sources = [str(name) for name in self.source_modules]  # type: ignore[attr-defined]
        found: list[str] = []
        for source in sources:
            for module in sorted(graph.find_descendants(source) | {source}):
                for imported in sorted(graph.find_modules_directly_imported_by(module)):
                    if not _allowed(imported, sources):
                        found.append(f"{module} imports {imported}")
        return ContractCheck(kept=not found, metadata={"found": found})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for line in check.metadata["found"]:
            output.print_error(f"- {line}: not the standard library nor the module's own package")
            output.new_line()


def _allowed(imported: str, sources: list[str]) -> bool:
    top = imported.split(".", 1)[0]
    return top in sys.stdlib_module_names or any(
        imported == source or imported.startswith(f"{source}.") for source in sources
    )
