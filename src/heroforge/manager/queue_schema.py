"""The queue file's tables, and the upgrade of a file an older heroforge wrote.

The file's version is SQLite's user_version. A new file gets the tables at once; an older one
gets each upgrade step after its version, in the same transaction, so a crash leaves it as it
was.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from heroforge.errors import UserError

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    priority INTEGER NOT NULL,
    gpus INTEGER NOT NULL,
    target_kimg REAL NOT NULL,
    data TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    config_sha TEXT NOT NULL,
    job_dir TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    lease_owner TEXT,
    lease_expires REAL,
    request TEXT,
    child_pid INTEGER,
    kimg REAL NOT NULL DEFAULT 0,
    restarts INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    status TEXT,
    not_before REAL,
    waiting_since REAL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    time REAL NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_job ON events(job_id, id);
"""
# what turns a queue file of version N-1 into version N
_UPGRADES = {
    2: (
        "ALTER TABLE jobs ADD COLUMN not_before REAL",
        "ALTER TABLE jobs ADD COLUMN waiting_since REAL",
    ),
}


def create_or_upgrade(db: sqlite3.Connection, path: Path) -> None:
    """Bring the open file (inside a transaction) to SCHEMA_VERSION."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise UserError(f"{path} was written by a newer heroforge (queue version {version})")
    if version == SCHEMA_VERSION:
        return
    if version == 0:
        for statement in _SCHEMA.split(";"):  # executescript() would COMMIT early
            db.execute(statement)
    else:
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _UPGRADES[step]:
                db.execute(statement)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
