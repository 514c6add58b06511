"""The zip half of safe ingest: list a zip's entries and read one, never extracting anything.

A zip is hostile in ways a folder is not: names that climb out of it (zip slip), sizes that
lie, entries that inflate a thousandfold (zip bombs), symlink entries. Everything here refuses
those with a Skip; `ingest_checks.py` holds the checks shared with folders.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections import Counter
from pathlib import Path

from heroforge.data.ingest_checks import (
    IngestLimits,
    Skip,
    check_file_name,
    check_folder_name,
    check_name_chars,
    check_size,
)
from heroforge.errors import UserError


def list_zip(
    path: Path, limits: IngestLimits
) -> tuple[list[tuple[str, int]], list[tuple[str, Skip]]]:
    """The zip's picture entries as (name, size) and its skipped entries, unsorted; UserError
    if the zip is unusable."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except Exception as exc:  # BadZipFile, OSError, struct.error...: the zip is not usable
        raise UserError(f"{path} is not a readable zip file: {exc}") from None
    if len(infos) > limits.max_zip_entries:
        raise UserError(
            f"{path} holds {len(infos)} entries, more than the limit of {limits.max_zip_entries}"
        )
    # Two entries with one name would share one manifest id, and zipfile can only read the last.
    counts = Counter(info.filename for info in infos)
    entries: list[tuple[str, int]] = []
    skipped: list[tuple[str, Skip]] = []
    for info in infos:
        try:
            if counts[info.filename] > 1:
                raise Skip("unsafe_path", f"the zip holds {counts[info.filename]} entries so named")
            if _is_picture_entry(info, limits):
                entries.append((info.filename, info.file_size))
        except Skip as skip:
            skipped.append((info.filename, skip))
    return entries, skipped


def _is_picture_entry(info: zipfile.ZipInfo, limits: IngestLimits) -> bool:
    """True for an entry to read as a picture, False for a plain folder entry; raises Skip."""
    _check_zip_path(info.filename)
    if info.is_dir():
        check_folder_name(info.filename.rstrip("/"))
        return False
    # The unix st_mode when the zip was made on unix; many tools store only the permission
    # bits, so a file type of 0 counts as a regular file.
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        raise Skip("symlink", "a symbolic link entry: not followed")
    check_file_name(info.filename)
    if kind not in (0, stat.S_IFREG):
        raise Skip("unreadable", "not a regular file")
    _check_zip_sizes(info, limits)
    return True


def _check_zip_path(name: str) -> None:
    # Refuse every name that could point outside the zip if someone extracted it (zip slip).
    check_name_chars(name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise Skip("unsafe_path", "an absolute path")
    if "\\" in name:
        raise Skip("unsafe_path", "a backslash in the name")
    if any(part in ("", ".", "..") for part in name.rstrip("/").split("/")):
        raise Skip("unsafe_path", "an empty, '.' or '..' path component")


def _check_zip_sizes(info: zipfile.ZipInfo, limits: IngestLimits) -> None:
    if info.flag_bits & 0x1:
        raise Skip("unreadable", "an encrypted zip entry")
    check_size(info.file_size, limits)
    ratio = info.file_size / max(info.compress_size, 1)
    if ratio > limits.max_zip_ratio:
        raise Skip(
            "too_large",
            f"compressed {ratio:.0f}:1, more than {limits.max_zip_ratio:g}:1 (zip bomb?)",
        )


_ZIP_CACHE: dict[tuple, zipfile.ZipFile] = {}


def _open_zip(container: str) -> zipfile.ZipFile:
    """The zip, opened once per process and per version of the file.

    Reopening it for every entry would re-read the whole central directory each time, which
    makes reading n entries cost O(n²). The pid is in the key because a forked worker must not
    share the parent's file offset.
    """
    st = os.stat(container)
    key = (container, st.st_mtime_ns, st.st_size, os.getpid())
    if key not in _ZIP_CACHE:
        for stale in _ZIP_CACHE.values():
            stale.close()
        _ZIP_CACHE.clear()
        _ZIP_CACHE[key] = zipfile.ZipFile(container)
    return _ZIP_CACHE[key]


def read_zip_entry(container: str, name: str, limits: IngestLimits) -> bytes:
    """One entry's bytes, checked again as at listing time; raises Skip."""
    try:
        archive = _open_zip(container)
        info = archive.getinfo(name)
        _check_zip_path(name)
        _check_zip_sizes(info, limits)
        with archive.open(info) as f:
            # zipfile stops at the declared size and checks the CRC, so a lying header gives
            # an error here, never more than max_file_bytes in memory.
            data = f.read(limits.max_file_bytes + 1)
    except Skip:
        raise
    except KeyError:
        raise Skip("unreadable", "no longer in the zip") from None
    except EOFError as exc:
        raise Skip("truncated", f"the zip entry ends early: {exc}") from None
    except Exception as exc:
        # zipfile and its decompressors raise a dozen exception types on corrupt data.
        raise Skip("unreadable", f"corrupt zip entry: {type(exc).__name__}: {exc}") from None
    check_size(len(data), limits)
    return data
