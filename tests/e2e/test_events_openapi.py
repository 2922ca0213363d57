"""The Events API's part of the OpenAPI document against a running server, on each engine.

Schemathesis generates requests for the six operations from `openapi_events.part()` (valid
ones, boundary values and ones that break the schema) and checks every answer: never a 500,
and status, content type and body as the document says. The part is set in a minimal document
that supplies what the main one does (the `Errors` schema, Basic authentication). It runs on a
server of its own: generated sources would otherwise use up the shared account's 50 sources.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from openprofiles.api.openapi_events import part

from ..support import Api

SEED = os.environ.get("OPENPROFILES_FUZZ_SEED", "20240601")
MAX_EXAMPLES = os.environ.get("OPENPROFILES_FUZZ_EXAMPLES", "10")
CHECKS = ["not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_headers_conformance", "response_schema_conformance"]


def document() -> dict[str, Any]:
    events = part()
    error = {
        "type": "object",
        "properties": {key: {"type": "string"} for key in ("code", "title", "detail", "status", "id")},
        "required": ["code", "title"],
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "openprofiles events", "version": "0"},
        "paths": events["paths"],
        "components": {
            "schemas": {
                "Error": error,
                "Errors": {"type": "object", "required": ["errors"], "properties": {
                    "errors": {"type": "array", "items": {"$ref": "#/components/schemas/Error"}}}},
                **events["components"]["schemas"],
            },
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
        },
        "security": [{"basic": []}],
    }


def test_the_part_is_well_formed() -> None:
    doc = document()
    assert set(part()) == {"paths", "components"}
    operations = [(method, path) for path, item in doc["paths"].items() for method in item]
    assert sorted(operations) == sorted([
        ("post", "/api/v2/user_profiles/events"), ("get", "/api/v2/user_profiles/events"),
        ("post", "/api/v2/users/{user_id}/events"), ("get", "/api/v2/users/{user_id}/events"),
        ("post", "/api/v2/user_profiles/{profile_id}/events"),
        ("get", "/api/v2/user_profiles/{profile_id}/events"),
    ])
    refs = {m for m in _refs(doc)}
    schemas = set(doc["components"]["schemas"])
    assert {r.rsplit("/", 1)[1] for r in refs} <= schemas
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            statuses = set(operation["responses"])
            assert {"400", "401", "403", "404"} <= statuses, (method, path)
            if method == "post":
                assert {"202", "413", "415"} <= statuses
            else:
                assert "200" in statuses


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_every_response_conforms(fresh_api: Any, tmp_path: Path) -> None:
    api: Api = fresh_api()
    schema = tmp_path / "events-openapi.json"
    schema.write_text(json.dumps(document()))
    report = tmp_path / "run.har"
    email, token = api.admin.auth
    result = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", str(schema), "--url", api.base_url,
         "--auth", f"{email}:{token}", "--checks", ",".join(CHECKS),
         "--phases", "examples,coverage,fuzzing", "--max-examples", MAX_EXAMPLES,
         "--seed", SEED, "--workers", "1", "--generation-database", "none",
         "--report", "har", "--report-har-path", str(report),
         "--no-color", "--output-truncate", "false"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-30000:] + result.stderr[-5000:]
    seen: dict[tuple[str, str], Counter[int]] = {}
    for entry in json.loads(report.read_text())["log"]["entries"]:
        path = urlsplit(entry["request"]["url"]).path
        method = entry["request"]["method"]
        template = (
            "/api/v2/user_profiles/events" if path == "/api/v2/user_profiles/events"
            else "/api/v2/users/{id}/events" if path.startswith("/api/v2/users/")
            else "/api/v2/user_profiles/{id}/events"
        )
        seen.setdefault((method, template), Counter())[entry["response"]["status"]] += 1
    every = Counter[int]()
    for counter in seen.values():
        every.update(counter)
    assert every[500] == 0, seen
    # The run reached the logic behind the door: events were stored and lists were read.
    assert seen[("POST", "/api/v2/user_profiles/events")][202] > 0, seen
    assert every[200] > 0 and every[401] < sum(every.values()) / 4, seen
