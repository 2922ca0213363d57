"""Bulk import and export of profiles as NDJSON, one `{"profile": {...}}` a line (docs/bulk.md).

Each line is a `PUT /api/v2/user_profiles?identifier=` whose query is the line's first
identifier, under the same rules. Lines are applied a batch per transaction. Within a batch,
lines that create a profile and share no key (identifier, identity, external id, user or
profile id) with any other line of the batch are written together, a few statements for the
whole batch, when the stored records decide their outcome at a glance: none of their keys is
stored (a new user), or only identities and the external id of one user, whom they join.
Every other line goes through the service itself, in order, in a savepoint of its own, so
that a refused line leaves nothing behind and never stops the import.

The parts, in the order a line meets them:
- `lines`: one line checked as the API checks a PUT, and what a refused line reports;
- `drafts`: a batch checked, grouped and drafted, and the stored holders of its keys looked up;
- `parsing_process`: the process that does that a batch or two ahead of the writes;
- `writing`: a checked batch written in one unit of work;
- `importing`: batches read, parsed, written and reported, from end to end;
- `export`: every profile written out in the format the import reads.
"""

from .export import export_profiles
from .importing import ImportTotals, import_lines, read_batches
from .lines import Refusal

__all__ = ["ImportTotals", "Refusal", "export_profiles", "import_lines", "read_batches"]
