"""What ingest checks the same way in a folder and in a zip: the limits, the Skip outcome, names
and sizes. Both ingest.py (folders, decoding) and ingest_zip.py build on this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

EXTENSIONS_BY_FORMAT = {
    "JPEG": (".jpg", ".jpeg"),
    "PNG": (".png",),
    "WEBP": (".webp",),
    "GIF": (".gif",),
    "BMP": (".bmp",),
    "TIFF": (".tif", ".tiff"),
}
IMAGE_EXTENSIONS = frozenset(ext for exts in EXTENSIONS_BY_FORMAT.values() for ext in exts)
SKIP_CODES = frozenset(
    {
        "not_an_image",  # the content is none of the picture formats, whatever its name
        "unsupported_extension",  # not a picture extension, or a hidden file
        "symlink",
        "directory",  # a folder named like a picture, or a hidden folder
        "unsafe_path",  # a zip name that climbs out of the zip, or an unprintable name
        "too_large",  # file bytes, a zip entry's size or ratio, a side in pixels
        "too_small",
        "decompression_bomb",  # more pixels than max_pixels
        "truncated",
        "empty",
        "unreadable",  # anything else a decoder or the file system refused
    }
)


@dataclass(frozen=True)
class IngestLimits:
    max_pixels: int = 64_000_000  # refuse bigger images (decompression bombs) before decoding
    max_side: int = 20_000  # refuse absurd header sizes
    min_side: int = 16  # refuse tiny images (1x1 etc.)
    max_file_bytes: int = 100 * 2**20  # refuse bigger files / zip entries
    max_zip_ratio: float = 200.0  # refuse zip entries compressed more than this (zip bombs)
    max_zip_entries: int = 1_000_000


DEFAULT_LIMITS = IngestLimits()


class Skip(Exception):  # noqa: N818 (a skip is an outcome, not an error)
    """A file that is skipped; .code is machine-readable, str(skip) a one-line human reason."""

    def __init__(self, code: str, reason: str) -> None:
        if code not in SKIP_CODES:
            raise ValueError(f"unknown skip code {code!r}")
        # Reasons often quote decoder messages: squeeze them onto one short line.
        reason = " ".join(str(reason).split())[:300] or code
        super().__init__(reason)
        self.code = code
        self.reason = reason

    def __reduce__(self) -> tuple[type[Skip], tuple[str, str]]:
        # Worker processes send skips back by pickle, which would call Skip(reason) by default.
        return (Skip, (self.code, self.reason))


def is_hidden(part: str) -> bool:
    # __MACOSX holds the resource forks macOS adds to zips: "._name.png" files, not pictures.
    return part.startswith(".") or part == "__MACOSX"


def check_name_chars(name: str) -> None:
    # Names become manifest ids and log lines: they must encode to UTF-8 and fit on one line.
    if not name.isprintable():
        raise Skip("unsafe_path", "the name holds control characters")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise Skip("unsafe_path", "the name is not valid UTF-8") from None


def check_folder_name(name: str) -> None:
    """Report the folders a user would miss or mistake for a picture; others pass silently."""
    part = PurePosixPath(name).name
    if is_hidden(part):
        raise Skip("directory", "a hidden folder: not searched")
    if PurePosixPath(part).suffix.lower() in IMAGE_EXTENSIONS:
        raise Skip("directory", "a folder named like a picture; the files in it are searched")


def check_file_name(name: str) -> None:
    check_name_chars(name)
    path = PurePosixPath(name)
    if any(is_hidden(part) for part in path.parts):
        raise Skip("unsupported_extension", "a hidden file")
    suffix = path.suffix.lower()
    if suffix not in IMAGE_EXTENSIONS:
        raise Skip("unsupported_extension", f"{suffix or 'no extension'}: not a picture extension")


def check_size(size: int, limits: IngestLimits) -> None:
    if size == 0:
        raise Skip("empty", "the file is empty")
    if size > limits.max_file_bytes:
        raise Skip("too_large", f"{size} bytes, more than {limits.max_file_bytes}")
