"""overrides.csv: a person's corrections to `prepare`, honoured by every rerun.

    # source,action        (action: include, exclude, upper or full)
    heroes/batman.png,include
    raw/ant-man.jpg,exclude

include/exclude force the decision; upper/full correct the body extent (which then decides
under --keep). Lines starting with # are comments.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from heroforge.errors import UserError
from heroforge.fileio import atomic_write_text

ACTIONS = ("include", "exclude", "upper", "full")
HEADER = "# source,action   (action: include | exclude | upper | full); one line per picture\n"


def read_overrides(path: Path) -> dict[str, str]:
    """source name -> action; a malformed line is refused with its line number. A later line
    for the same picture wins (so a line appended by hand corrects the review page's)."""
    if not path.exists():
        return {}
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read {path}: {err}") from None
    result: dict[str, str] = {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if len(row) != 2 or row[1].strip().lower() not in ACTIONS:
            raise UserError(
                f"{path}:{number}: expected 'source,action' with action one of "
                f"{', '.join(ACTIONS)}, got {','.join(row)!r}"
            )
        result[row[0].strip()] = row[1].strip().lower()
    return result


def write_overrides(path: Path, overrides: dict[str, str]) -> None:
    buf = io.StringIO()
    buf.write(HEADER)
    writer = csv.writer(buf, lineterminator="\n")
    for source in sorted(overrides):
        writer.writerow([source, overrides[source]])
    atomic_write_text(path, buf.getvalue())


def set_override(path: Path, source: str, action: str | None) -> None:
    """Set (or with None, remove) one picture's override, keeping the others."""
    if action is not None and action not in ACTIONS:
        raise UserError(f"override action {action!r} is not one of {', '.join(ACTIONS)}")
    overrides = read_overrides(path)
    if action is None:
        overrides.pop(source, None)
    else:
        overrides[source] = action
    write_overrides(path, overrides)
