"""Bulk import and export of profiles as NDJSON, one `{"profile": {...}}` a line (docs/bulk.md).

Each line is a `PUT /api/v2/user_profiles?identifier=` whose query is the line's first
identifier, under the same rules. Lines are applied a batch per transaction, some in bulk and
the rest through the service (`writing`); a refused line leaves nothing behind and never stops
the import.

The parts, in the order a line meets them:
- `lines`: one line checked as the API checks a PUT, and what a refused line reports;
- `drafts`: a batch checked, grouped and drafted, and the stored holders of its keys looked up;
- `parsing_process`: the process that does that a batch or two ahead of the writes;
- `writing`: a checked batch written in one unit of work;
- `together`: the `PUT ?identifier=` requests that reach a server together, written the same way;
- `importing`: batches read, parsed, written and reported, from end to end;
- `export`: every profile written out in the format the import reads.
"""

from .export import export_profiles
from .importing import ImportTotals, import_lines, read_batches
from .lines import Refusal

__all__ = ["ImportTotals", "Refusal", "export_profiles", "import_lines", "read_batches"]
