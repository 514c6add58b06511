"""The training archive: prepared pictures packed the way the official StyleGAN2-ADA
dataset_tool packs them, so that NVIDIA's own training code can read it too.

Layout of the zip:
    00000/img00000000.png ... 00000/img00000999.png, 00001/img00001000.png, ...
    dataset.json      {"labels": null} or {"labels": [["00000/img00000000.png", 3], ...]}
    heroforge.json    provenance: source folder, resolution, sha256 per picture (official
                      tools only look at image entries and dataset.json, so they ignore it)

The PNG bytes are stored as they are (ZIP_STORED, no re-encoding): PNG is already compressed,
and the pictures a human reviewed after `prepare` are exactly the ones trained on.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from heroforge.errors import UserError, write_failure
from heroforge.fileio import atomic_file

LABELS_ENTRY = "dataset.json"
PROVENANCE_ENTRY = "heroforge.json"
PROVENANCE_FORMAT = "heroforge.archive/1"
MIN_SIDE, MAX_SIDE = 8, 2048  # the sides data.resolution allows
CHANNELS = {"RGB": 3, "L": 1}  # Pillow mode -> channels a network sees
MAX_CLASSES = 65536  # bounds the one-hot label vector a hostile dataset.json could ask for
MAX_JSON_BYTES = 64 << 20  # labels files and dataset.json; far above any real one
MAX_PICTURE_BYTES = 64 << 20  # a stored 2048 px RGB PNG is ~13 MB; larger is not a picture
_CHUNK = 1 << 20
# Entries carry a fixed timestamp so that the same pictures always give the same entry bytes.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)

Progress = Callable[[int, int], None]  # (steps done, steps in all)


def archive_name(index: int) -> str:
    """Entry name of picture `index`: 1000 per folder, named as the official tool names them."""
    digits = f"{index:08d}"
    return f"{digits[:5]}/img{digits}.png"


def one_line(err: BaseException) -> str:
    """An exception as a single line, for messages that must stay one line."""
    return " ".join(str(err).split()) or type(err).__name__


def check_side(where: str, size: tuple[int, int]) -> int:
    """The side of a square picture whose side is a power of two from 8 to 2048; else UserError.

    Called on the size a header declares, before decoding: it also bounds decoding memory."""
    w, h = size
    if w != h:
        raise UserError(f"{where} is {w}x{h} px: training pictures must be square (run prepare)")
    if not (MIN_SIDE <= w <= MAX_SIDE and w & (w - 1) == 0):
        raise UserError(
            f"{where} is {w}x{h} px: the side must be a power of two from {MIN_SIDE} to {MAX_SIDE}"
        )
    return w


def is_class(value: object) -> bool:
    """A class label: an int (not a bool) from 0 to MAX_CLASSES - 1."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_CLASSES


def read_labels_file(path: str | Path) -> dict[str, int]:
    """A JSON file {"picture.png": class, ...} as a dict; a malformed file is a UserError."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_JSON_BYTES + 1)
    except OSError as err:
        raise UserError(f"cannot read labels file {path}: {one_line(err)}") from None
    if len(raw) > MAX_JSON_BYTES:
        raise UserError(f"labels file {path} is larger than {MAX_JSON_BYTES >> 20} MiB")
    try:
        labels = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"labels file {path} is not valid JSON: {one_line(err)}") from None
    if not isinstance(labels, dict):
        raise UserError(f'labels file {path} must hold an object {{"picture.png": class, ...}}')
    for name, value in labels.items():
        if not is_class(value):
            raise UserError(
                f"labels file {path}: {name} = {json.dumps(value)[:40]} is not allowed: "
                f"an integer class from 0 to {MAX_CLASSES - 1}"
            )
    return labels


def _list_pictures(prepared_dir: Path) -> list[Path]:
    images = prepared_dir / "images"
    if not images.is_dir():
        raise UserError(f"{images} is not a folder: give the folder that `heroforge prepare` wrote")
    # Dot files are leftovers of interrupted atomic writes (.name.tmp) or of file managers.
    paths = sorted(p for p in images.iterdir() if not p.name.startswith("."))
    if not paths:
        raise UserError(f"no pictures in {images}: nothing to archive")
    return paths


def _inspect_png(path: Path) -> tuple[str, int, str]:
    """(mode, side, sha256) of one picture. It is decoded in full once, so that a truncated or
    corrupt file is refused now rather than in the middle of a training run."""
    if path.suffix.lower() != ".png" or not path.is_file():
        raise UserError(f"{path} is not a .png file: the archive takes only prepared PNG pictures")
    if path.stat().st_size > MAX_PICTURE_BYTES:
        raise UserError(f"{path} is larger than {MAX_PICTURE_BYTES >> 20} MiB: not a picture")
    data = path.read_bytes()
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as img:
            side = check_side(str(path), img.size)
            mode = img.mode
            img.load()
    except UserError:
        raise
    except UnidentifiedImageError:
        raise UserError(f"{path} is not a PNG picture (its bytes are of another kind)") from None
    except Exception as err:  # Pillow raises a zoo of types on malformed bytes
        raise UserError(f"{path} is not a readable PNG picture ({one_line(err)})") from None
    if mode not in CHANNELS:
        raise UserError(
            f"{path} is a PNG of mode {mode}: archive pictures must be RGB (or greyscale L) "
            "without alpha (run prepare)"
        )
    return mode, side, hashlib.sha256(data).hexdigest()


def _verify(paths: list[Path], step: Callable[[int], None]) -> tuple[str, int, list[str]]:
    """Check every picture against the first; returns (mode, side, sha256 per picture)."""
    mode, side, first_hash = _inspect_png(paths[0])
    hashes = [first_hash]
    step(1)
    for i, path in enumerate(paths[1:], start=2):
        this_mode, this_side, digest = _inspect_png(path)
        if (this_mode, this_side) != (mode, side):
            raise UserError(
                f"{path} is {this_side} px {this_mode} but {paths[0].name} is {side} px {mode}: "
                "all pictures must have the same size and mode"
            )
        hashes.append(digest)
        step(i)
    return mode, side, hashes


def _classes(paths: list[Path], labels: dict[str, int]) -> list[int]:
    """The class of each picture. Labels may name pictures that prepare left out."""
    classes = []
    for path in paths:
        if path.name not in labels:
            raise UserError(f"{path} has no class label in the labels given")
        if not is_class(labels[path.name]):
            raise UserError(
                f"the class label of {path.name} is {labels[path.name]!r}: "
                f"an integer from 0 to {MAX_CLASSES - 1} is needed"
            )
        classes.append(labels[path.name])
    return classes


def _copy_entry(zf: zipfile.ZipFile, src: Path, name: str, sha256: str) -> None:
    """Stream one picture into the zip byte for byte, checking it is the picture verified."""
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16  # readable files when someone unzips the archive
    digest = hashlib.sha256()
    with open(src, "rb") as f, zf.open(info, "w") as dst:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            dst.write(chunk)
    if digest.hexdigest() != sha256:
        raise UserError(f"{src} changed while the archive was being written: run archive again")


def _write_json(zf: zipfile.ZipFile, name: str, value: object) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED  # text: compresses well, unlike PNG
    info.external_attr = 0o644 << 16
    zf.writestr(info, json.dumps(value, indent=1) + "\n")


@dataclass(frozen=True)
class ArchiveSummary:
    """What write_archive wrote."""

    images: int  # pictures in the archive
    resolution: int  # their side in pixels (all are square and the same size)
    channels: int  # 3 (RGB) or 1 (greyscale)
    path: Path  # the .zip written
    bytes: int  # its size


def write_archive(
    prepared_dir: str | Path,
    out_zip: str | Path,
    labels: dict[str, int] | None = None,
    *,
    progress: Progress | None = None,
) -> ArchiveSummary:
    """Pack PREPARED/images/*.png into the training archive out_zip (see the module docstring).

    Every picture is verified first (PNG, RGB or L, one square power-of-two size for all); the
    first bad one is a UserError naming it. labels maps a picture's file name to its class.
    The zip is streamed to a temp file beside out_zip and renamed over it only when complete,
    so an interrupted run leaves the old archive (or none), never half of one.
    """
    prepared_dir, out_zip = Path(prepared_dir), Path(out_zip)
    if out_zip.suffix.lower() != ".zip":
        raise UserError(f"the archive name must end in .zip (official tools need it): {out_zip}")
    if out_zip.is_dir():
        raise UserError(f"{out_zip} is a folder: give the path of the .zip file to write")
    paths = _list_pictures(prepared_dir)
    classes = None if labels is None else _classes(paths, labels)
    total = 2 * len(paths)  # one step to verify and one to copy each picture
    report = progress or (lambda done, total: None)
    mode, side, hashes = _verify(paths, lambda done: report(done, total))

    names = [archive_name(i) for i in range(len(paths))]
    provenance = {
        "format": PROVENANCE_FORMAT,
        "source": prepared_dir.resolve().name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "count": len(paths),
        "resolution": side,
        "channels": CHANNELS[mode],
        "images": [
            {"name": name, "source": path.name, "sha256": digest}
            for name, path, digest in zip(names, paths, hashes, strict=True)
        ],
    }
    dataset_json = {
        "labels": None
        if classes is None
        else [list(pair) for pair in zip(names, classes, strict=True)]
    }

    try:
        out_zip.parent.mkdir(parents=True, exist_ok=True)
        with (
            atomic_file(out_zip) as f,
            zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf,
        ):
            for i, (path, name, digest) in enumerate(zip(paths, names, hashes, strict=True)):
                _copy_entry(zf, path, name, digest)
                report(len(paths) + i + 1, total)
            _write_json(zf, LABELS_ENTRY, dataset_json)
            _write_json(zf, PROVENANCE_ENTRY, provenance)
    except OSError as err:  # a full disk, a folder we may not write: the old archive stays
        raise write_failure(f"cannot write {out_zip}", err) from None
    return ArchiveSummary(
        images=len(paths),
        resolution=side,
        channels=CHANNELS[mode],
        path=out_zip,
        bytes=out_zip.stat().st_size,
    )
