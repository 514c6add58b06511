"""Safe ingest for `heroforge prepare`: list the pictures of a raw folder or zip, decode each one.

Every input file is hostile until decoded. A bad file raises `Skip` with a machine-readable
code and a one-line reason; the batch goes on. Nothing here follows symlinks, writes to disk
or lets Pillow near a decoder that could run code (EPS calls Ghostscript): only the picture
formats below are ever tried, recognised by content, not by file name.

    sources, skipped = list_sources("raw/")          # or "raw.zip"
    for source in sources:
        try:
            decoded = decode_image(source.read_bytes(limits), source.name, limits)
        except Skip as skip:
            ...                                       # skip.code, str(skip)
"""

from __future__ import annotations

import errno
import io
import math
import os
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from heroforge.data.ingest_checks import (
    DEFAULT_LIMITS,
    EXTENSIONS_BY_FORMAT,
    IMAGE_EXTENSIONS,
    IngestLimits,
    Skip,
    check_file_name,
    check_folder_name,
    check_size,
    is_hidden,
)
from heroforge.data.ingest_convert import orient, to_rgb_alpha
from heroforge.data.ingest_zip import list_zip, read_zip_entry
from heroforge.errors import UserError

EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class Source:
    name: str  # posix path relative to the input folder / inside the zip: the id in the manifest
    size: int  # bytes
    container: str  # absolute path of the input folder or zip file
    is_zip: bool

    def read_bytes(self, limits: IngestLimits = DEFAULT_LIMITS) -> bytes:
        """The file's bytes, never more than limits.max_file_bytes; raises Skip."""
        if self.is_zip:
            return read_zip_entry(self.container, self.name, limits)
        return _read_file(Path(self.container, *self.name.split("/")), limits)


@dataclass
class Decoded:
    rgb: np.ndarray  # H x W x 3 uint8, EXIF orientation applied
    alpha: np.ndarray | None  # H x W uint8, or None when the image has no (meaningful) alpha
    format: str  # "JPEG", "PNG", "WEBP", "GIF", "BMP" or "TIFF"
    original_mode: str  # Pillow mode before conversion, e.g. "CMYK", "I;16", "P", "RGBA"
    original_size: tuple[int, int]  # (w, h) as stored, before EXIF rotation
    # (w, h) as shown (EXIF orientation applied) at the stored resolution; rgb is smaller when
    # a JPEG was decoded reduced (decode_image's shrink_to)
    full_size: tuple[int, int]
    notes: list[str] = field(default_factory=list)  # conversions applied, short

    @property
    def scale(self) -> float:
        """rgb's size as a share of full_size (1, or 1/2, 1/4, 1/8 when decoded reduced)."""
        return self.rgb.shape[1] / self.full_size[0]


# ---------------------------------------------------------------------------------- listing


def list_sources(
    path: str | os.PathLike[str], limits: IngestLimits = DEFAULT_LIMITS
) -> tuple[list[Source], list[tuple[str, Skip]]]:
    """Every candidate file (sorted by name), and the entries skipped with their reason.

    path is a folder (searched recursively, symlinks never followed) or a .zip file (read in
    place, never extracted). Names in the skipped list have control characters escaped so
    that each fits on one printed line.
    """
    root = Path(path)
    if root.is_dir():
        sources, skipped = _list_folder(root.resolve(), limits)
    elif root.is_file() and root.suffix.lower() == ".zip":
        container = root.resolve()
        entries, skipped = list_zip(container, limits)
        sources = [Source(name, size, str(container), True) for name, size in entries]
    elif not root.exists():
        raise UserError(f"{path} does not exist")
    else:
        raise UserError(f"{path} is neither a folder nor a .zip file")
    sources.sort(key=lambda s: s.name)
    skipped = sorted(((_printable(name), skip) for name, skip in skipped), key=lambda x: x[0])
    return sources, skipped


def _list_folder(root: Path, limits: IngestLimits) -> tuple[list[Source], list[tuple[str, Skip]]]:
    sources: list[Source] = []
    skipped: list[tuple[str, Skip]] = []
    pending = [""]  # relative posix paths of the folders still to search
    while pending:  # a loop, not recursion: a deeply nested tree cannot hit the stack limit
        folder = pending.pop()
        try:
            with os.scandir(root / folder) as listing:
                entries = list(listing)
        except OSError as exc:
            if not folder:
                raise UserError(f"cannot list {root}: {exc.strerror or exc}") from None
            skipped.append((folder, Skip("unreadable", f"cannot list folder: {exc.strerror}")))
            continue
        for entry in entries:
            name = f"{folder}/{entry.name}" if folder else entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    if not is_hidden(entry.name):
                        pending.append(name)
                    check_folder_name(name)
                else:
                    sources.append(_folder_file(entry, name, root, limits))
            except Skip as skip:
                skipped.append((name, skip))
            except OSError as exc:  # the entry vanished or cannot be stat'ed
                skipped.append((name, Skip("unreadable", exc.strerror or str(exc))))
    return sources, skipped


def _folder_file(entry: os.DirEntry, name: str, root: Path, limits: IngestLimits) -> Source:
    if entry.is_symlink():
        raise Skip("symlink", "a symbolic link: not followed")
    check_file_name(name)
    info = entry.stat(follow_symlinks=False)
    _check_stat(info, limits)
    return Source(name, info.st_size, str(root), False)


# ----------------------------------------------------------------------------------- checks


def _printable(name: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)


def _check_stat(info: os.stat_result, limits: IngestLimits) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise Skip("unreadable", "not a regular file")  # a fifo or device would block or never end
    check_size(info.st_size, limits)


# ---------------------------------------------------------------------------------- reading


def _read_file(path: Path, limits: IngestLimits) -> bytes:
    # O_NOFOLLOW: a file swapped for a symlink since it was listed is refused, not followed;
    # O_NONBLOCK: one swapped for a fifo cannot hang the open.
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Skip("symlink", "a symbolic link: not followed") from None
        raise Skip("unreadable", f"cannot open: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "rb") as f:
            _check_stat(os.fstat(f.fileno()), limits)
            data = f.read(limits.max_file_bytes + 1)  # bounded even if the file grows meanwhile
    except OSError as exc:
        raise Skip("unreadable", f"cannot read: {exc.strerror or exc}") from None
    check_size(len(data), limits)
    return data


# --------------------------------------------------------------------------------- decoding


def decode_image(
    data: bytes, name: str, limits: IngestLimits = DEFAULT_LIMITS, shrink_to: int | None = None
) -> Decoded:
    """Decode one file defensively or raise Skip (never any other exception for bad data).

    name is only used to note a file whose extension does not match its content. shrink_to:
    a JPEG whose longer side is at least twice this is decoded at 1/2, 1/4 or 1/8 of its size
    (the decoder's own DCT scaling, 3x faster for a 2400 px picture), its longer side staying
    >= shrink_to; Decoded.scale says by how much.
    """
    check_size(len(data), limits)
    try:
        with warnings.catch_warnings():
            # Decoders warn about harmless oddities (corrupt EXIF...) that would flood a batch;
            # Pillow's own decompression-bomb warning becomes an error and so a Skip.
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=tuple(EXTENSIONS_BY_FORMAT)) as img:
                return _decode_opened(img, name, limits, shrink_to)
    except Skip:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise Skip("decompression_bomb", str(exc)) from None
    except UnidentifiedImageError:
        formats = ", ".join(EXTENSIONS_BY_FORMAT)
        raise Skip("not_an_image", f"the content is none of {formats}") from None
    except EOFError as exc:
        raise Skip("truncated", f"the data ends early: {exc}") from None
    except OSError as exc:
        code = "truncated" if "truncated" in str(exc).lower() else "unreadable"
        raise Skip(code, str(exc)) from None
    except Exception as exc:
        # Corrupt data makes Pillow's decoders raise SyntaxError, ValueError, struct.error,
        # IndexError, MemoryError...: all of them mean this file, not the batch, is bad.
        raise Skip("unreadable", f"{type(exc).__name__}: {exc}") from None


def _decode_opened(
    img: Image.Image, name: str, limits: IngestLimits, shrink_to: int | None
) -> Decoded:
    _check_header_size(img.size, limits)  # Image.open only read the header: nothing decoded yet
    size = img.size
    if shrink_to and img.format in ("JPEG", "MPO") and max(size) >= 2 * shrink_to:
        # draft keeps both sides >= the asked ones: ask for the picture shrunk to shrink_to
        ratio = shrink_to / max(size)
        img.draft(img.mode, (math.ceil(size[0] * ratio), math.ceil(size[1] * ratio)))
    img.load()
    mode = img.mode  # before counting frames, which seeks through the file
    rgb, alpha, notes = to_rgb_alpha(img)
    orientation, exif_note = _exif_orientation(img)
    if orientation != 1:
        rgb = orient(rgb, orientation)
        alpha = None if alpha is None else orient(alpha, orientation)
        notes.append("exif-rotated")
    assert img.format is not None  # Image.open names the format whose plugin read the header
    fmt = "JPEG" if img.format == "MPO" else img.format  # MPO: a phone's JPEG with extra views
    extra = [exif_note, _frames_note(img), _extension_note(name, fmt)]
    shown = size[::-1] if orientation in (5, 6, 7, 8) else size  # these turn it by 90 degrees
    return Decoded(rgb, alpha, fmt, mode, size, shown, notes + [n for n in extra if n])


def _check_header_size(size: tuple[int, int], limits: IngestLimits) -> None:
    w, h = size
    if w * h > limits.max_pixels:
        raise Skip(
            "decompression_bomb",
            f"the header claims {w}x{h} px, more than {limits.max_pixels} pixels",
        )
    if max(w, h) > limits.max_side:
        raise Skip("too_large", f"{w}x{h} px: a side longer than {limits.max_side} px")
    if min(w, h) < limits.min_side:
        raise Skip("too_small", f"{w}x{h} px: a side shorter than {limits.min_side} px")


def _exif_orientation(img: Image.Image) -> tuple[int, str | None]:
    try:
        value = img.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:
        # A corrupt EXIF block costs the rotation, not the picture.
        return 1, "exif unreadable: not rotated"
    return (value, None) if value in range(1, 9) else (1, None)


def _frames_note(img: Image.Image) -> str | None:
    try:
        frames = getattr(img, "n_frames", 1)
    except Exception:
        # Counting parses every later frame; a broken one costs the count, not the picture.
        return "animated: first frame used, later frames broken"
    if frames == 1:
        return None
    if img.format in ("GIF", "PNG", "WEBP"):
        return f"animated: first of {frames} frames"
    return f"multi-picture: first of {frames} pictures"  # TIFF pages, MPO views


def _extension_note(name: str, fmt: str) -> str | None:
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in IMAGE_EXTENSIONS and suffix not in EXTENSIONS_BY_FORMAT.get(fmt, ()):
        return f"named {suffix}, holds {fmt}"
    return None
