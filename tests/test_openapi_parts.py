"""The OpenAPI document is assembled from parts that other modules can contribute."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from openprofiles.api import openapi

NOTES_PART = '''
def part():
    return {
        "paths": {"/api/v2/user_profiles/{profile_id}/notes": {
            "parameters": [{"$ref": "#/components/parameters/ProfileId"}],
            "get": {"operationId": "listProfileNotes", "tags": ["Notes"], "responses": {
                "200": {"description": "Events.", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/NotesResponse"}}}},
                "404": {"$ref": "#/components/responses/NotFound"},
            }},
        }},
        "components": {"schemas": {"NotesResponse": {"type": "object"}}},
        "tags": [{"name": "Notes"}, {"name": "Profiles"}],
    }
'''


@pytest.fixture
def part_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Writes a real module exposing `part()` and names it among the document's parts."""
    def install(name: str, source: str) -> None:
        (tmp_path / f"{name}.py").write_text(source)
        monkeypatch.setattr(openapi, "PART_MODULES", (*openapi.PART_MODULES, name))
        monkeypatch.delitem(sys.modules, name, raising=False)

    monkeypatch.syspath_prepend(str(tmp_path))
    return install


def test_core_document_is_valid() -> None:
    document = openapi.document()
    validate(document)
    assert json.loads(openapi.document_bytes()) == document


def test_a_named_module_contributes_its_part(part_module) -> None:  # type: ignore[no-untyped-def]
    part_module("notes_part", NOTES_PART)
    document = openapi.document()
    validate(document)
    assert "/api/v2/user_profiles/{profile_id}/notes" in document["paths"]
    assert "/api/v2/user_profiles/{profile_id}" in document["paths"]
    assert document["components"]["schemas"]["NotesResponse"] == {"type": "object"}
    assert "Profile" in document["components"]["schemas"]
    assert [t["name"] for t in document["tags"]].count("Profiles") == 1


def test_a_missing_part_module_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openapi, "PART_MODULES", ("openprofiles.api.no_such_part",))
    assert openapi.document()["paths"].keys() == openapi.core_part()["paths"].keys()


def test_a_broken_part_module_is_an_error(part_module) -> None:  # type: ignore[no-untyped-def]
    part_module("broken_part", "import no_such_dependency_anywhere\n")
    with pytest.raises(ModuleNotFoundError):
        openapi.document()


def test_parts_may_not_redefine_what_another_defines(part_module) -> None:  # type: ignore[no-untyped-def]
    part_module("clashing_part", "def part():\n"
                "    return {'components': {'schemas': {'Profile': {'type': 'string'}}}}\n")
    with pytest.raises(ValueError, match="components/schemas/Profile"):
        openapi.document()


def test_register_adds_a_part() -> None:
    def extra() -> dict[str, object]:
        return {"paths": {"/api/v2/extra": {"get": {"responses": {"204": {"description": "x"}}}}}}

    openapi.register(extra)
    try:
        assert "/api/v2/extra" in json.loads(openapi.document_bytes())["paths"]
    finally:
        openapi.unregister(extra)
    assert "/api/v2/extra" not in json.loads(openapi.document_bytes())["paths"]
