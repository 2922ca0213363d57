"""The served OpenAPI document against the running server, on each engine.

Schemathesis reads the document from the server, generates requests for every operation
(valid ones and ones that break the schema, boundary values, and chains that follow the
document's links), sends them with the admin's credentials and checks every answer: never a
500, and status code, content type, headers and body as the document says (CHECKS). Examples per
operation are bounded and the seed fixed so that a run is short and repeatable; set
OPENPROFILES_FUZZ_SEED and OPENPROFILES_FUZZ_EXAMPLES to explore further.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from openapi_spec_validator import validate

from ..support import Api

SEED = os.environ.get("OPENPROFILES_FUZZ_SEED", "20240601")
MAX_EXAMPLES = os.environ.get("OPENPROFILES_FUZZ_EXAMPLES", "10")
CHECKS = [
    # No 500, and every answer as the document describes it.
    "not_a_server_error", "status_code_conformance", "content_type_conformance",
    "response_headers_conformance", "response_schema_conformance",
    # Methods a path does not define are a 405 with a true Allow header; requests without the
    # credentials are refused; a deleted profile is gone.
    "unsupported_method", "allow_header_conformance", "ignored_auth", "use_after_free",
]
# Not checked: positive_data_acceptance and negative_data_rejection (business rules such as
# "identifier in use" cannot be written in a schema), and ensure_resource_availability, whose
# guesses take the `.json` of a user's `url` for part of its id.


def run_schemathesis(api: Api, report: Path) -> subprocess.CompletedProcess[str]:
    email, token = api.admin.auth
    return subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{api.base_url}/api/v2/openapi.json",
         "--auth", f"{email}:{token}", "--checks", ",".join(CHECKS),
         "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", MAX_EXAMPLES,
         "--seed", SEED, "--workers", "1", "--generation-database", "none",
         "--report", "har", "--report-har-path", str(report),
         "--no-color", "--output-truncate", "false"],
        cwd=report.parent, capture_output=True, text=True, timeout=600,
    )


def statuses_by_operation(report: Path) -> dict[tuple[str, str], Counter[int]]:
    seen: dict[tuple[str, str], Counter[int]] = {}
    for entry in json.loads(report.read_text())["log"]["entries"]:
        path = urlsplit(entry["request"]["url"]).path
        key = (entry["request"]["method"], path)
        seen.setdefault(key, Counter())[entry["response"]["status"]] += 1
    return seen


def test_every_response_conforms(api: Api, tmp_path: Path) -> None:
    report = tmp_path / "run.har"
    result = run_schemathesis(api, report)
    assert result.returncode == 0, result.stdout[-30000:] + result.stderr[-5000:]

    # The run must have reached the API's logic, not stopped at the door: the generated
    # requests were authenticated, and the main writes and reads succeeded.
    statuses = statuses_by_operation(report)
    every = Counter[int]()
    for counter in statuses.values():
        every.update(counter)
    assert every[500] == 0
    assert every[401] < sum(every.values()) / 4, every
    assert statuses[("POST", "/api/v2/users")][201] > 0, statuses
    assert statuses[("PUT", "/api/v2/user_profiles")][201] > 0, statuses
    assert statuses[("GET", "/api/v2/users/me")][200] > 0, statuses
    assert every[200] > 0 and every[204] > 0, every


def test_document_is_valid_openapi_3_1(api: Api) -> None:
    response = httpx.get(f"{api.base_url}/api/v2/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["openapi"] == "3.1.0"
    validate(document)
    assert document == httpx.get(f"{api.base_url}/api/v2/openapi").json()
