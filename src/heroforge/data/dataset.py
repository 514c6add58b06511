"""ImageDataset: the training pictures of a zip archive or of a folder, as uint8 tensors.

Reads archives written by `heroforge archive` or by the official StyleGAN2-ADA dataset_tool,
and plain folders of PNG/JPEG pictures (recursively). Images are taken in sorted name order,
as the official loader takes them, so labels and max_images pick the same pictures.

Every file is hostile: entry names that climb out ('..', absolute) refuse the whole archive,
entries are size-capped and decoded in memory only (never extracted), a header must declare
the dataset's size before its pixels are decoded, and a bad picture is a one-line UserError
naming it. All headers are checked when the dataset is opened, so a bad picture stops the run
before training starts rather than hours into it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from heroforge.data.archive import (
    CHANNELS,
    LABELS_ENTRY,
    MAX_CLASSES,
    MAX_JSON_BYTES,
    MAX_PICTURE_BYTES,
    check_side,
    is_class,
    one_line,
)
from heroforge.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
FORMATS = ("PNG", "JPEG")
_DRIVE = re.compile(r"^[A-Za-z]:")


def _is_hidden(name: str) -> bool:
    # macOS zips add __MACOSX/._x.png resource forks; file managers add dot files.
    return any(part.startswith(".") or part == "__MACOSX" for part in name.split("/"))


def _check_entry_name(archive: Path, name: str) -> None:
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or _DRIVE.match(name) or ".." in parts:
        raise UserError(f"{archive} holds an unsafe entry name {name!r}: archive refused")


def _read_capped(stream: IO[bytes], where: str, cap: int) -> bytes:
    data = stream.read(cap + 1)
    if len(data) > cap:
        raise UserError(f"{where} is larger than {cap >> 20} MiB: not a training picture")
    return data


class ImageDataset(Dataset):
    """Items are (image uint8 C x H x W, label float32 one-hot of size c_dim, or shape [0]).

    mirror=True doubles the length: item i >= num_images is image i - num_images flipped in x.
    max_images > 0 keeps the first N images in name order. use_labels=True needs the class
    labels of dataset.json ("labels": [[name, class], ...]) for every image.
    """

    def __init__(
        self,
        path: str | Path,
        resolution: int | None = None,  # the size the config expects; None = whatever it is
        mirror: bool = False,  # also serve x-flipped copies
        use_labels: bool = False,  # one-hot class labels instead of empty label tensors
        max_images: int = 0,  # first N images in name order; 0 = all
    ) -> None:
        self._path = Path(path)
        self._mirror = bool(mirror)
        self._use_labels = bool(use_labels)
        self._max_images = int(max_images)
        if self._max_images < 0:
            raise UserError(f"max_images = {max_images} is not allowed: >= 0 (0 = all)")
        # An open ZipFile is never shared between processes: DataLoader workers (fork or spawn)
        # each open their own on first use; _zip_pid tells a forked copy from the original.
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid = 0
        self._fingerprint: str | None = None
        if not self._path.exists():
            raise UserError(f"dataset {self._path} does not exist")
        self._is_zip = self._path.is_file()
        try:
            all_names, self._zip_keys, labels_raw = (
                self._scan_zip() if self._is_zip else self._scan_folder()
            )
            if not all_names:
                raise UserError(f"no PNG or JPEG pictures in {self._path}")
            all_labels = self._parse_labels(labels_raw, all_names)
            keep = self._max_images or len(all_names)
            self._names = tuple(all_names[:keep])
            self._labels = None if all_labels is None else all_labels[:keep]
            # Classes over all images, as the official loader counts them: max_images must not
            # change the size of the label vector the networks are built for.
            self._classes = 0 if all_labels is None else max(all_labels) + 1
            self._mode, self._resolution = self._check_headers()
        finally:
            self._close()
        if resolution is not None and resolution != self._resolution:
            raise UserError(
                f"dataset is {self._resolution} px but data.resolution = {resolution}: re-run "
                f"prepare with --size {resolution} and archive again, or set "
                f"data.resolution = {self._resolution}"
            )
        if self._use_labels and self._labels is None:
            raise UserError(
                f'{self._path} has no class labels (dataset.json "labels" is missing or null): '
                "archive with --labels, or train without data.use_labels"
            )

    # ---- public properties -------------------------------------------------------------------

    @property
    def resolution(self) -> int:
        return self._resolution

    @property
    def channels(self) -> int:
        return CHANNELS[self._mode]

    @property
    def num_images(self) -> int:
        """Distinct images, without the mirrored copies."""
        return len(self._names)

    @property
    def c_dim(self) -> int:
        """Size of the label vector of an item: the number of classes, or 0 without use_labels."""
        return self._classes if self._use_labels else 0

    @property
    def has_labels(self) -> bool:
        """Whether the dataset carries a class label for every image (used or not)."""
        return self._labels is not None

    @property
    def names(self) -> tuple[str, ...]:
        """Entry names (zip) or paths relative to the folder, in item order."""
        return self._names

    def __len__(self) -> int:
        return self.num_images * (2 if self._mirror else 1)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} items")
        flip = index >= self.num_images
        i = index - self.num_images if flip else index
        image = self._load(self._names[i])
        if flip:
            image = image[:, :, ::-1]
        label = torch.zeros(self.c_dim, dtype=torch.float32)
        if self._use_labels:
            assert self._labels is not None  # __init__ refuses use_labels without labels
            label[self._labels[i]] = 1.0
        return torch.from_numpy(image.copy()), label  # copy: writable and C-contiguous

    def fingerprint(self) -> str:
        """sha256 of the images (names and contents, in order) and of the options that change
        what training sees, so that a resume can refuse a different dataset. Zips use the
        CRC32 and size of each entry; folders hash each file's bytes (read once, cached)."""
        if self._fingerprint is None:
            digest = hashlib.sha256(b"heroforge.dataset/1\n")
            for name in self._names:
                digest.update(f"{name}\n{self._content_key(name)}\n".encode())
            options = {
                "mirror": self._mirror,
                "max_images": self._max_images,
                "use_labels": self._use_labels,
                "labels": self._labels if self._use_labels else None,
            }
            digest.update(json.dumps(options, sort_keys=True).encode())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    # ---- pickling: workers get the state without the open zip --------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_zip"] = None
        state["_zip_pid"] = 0
        return state

    # ---- sources -----------------------------------------------------------------------------

    def _where(self, name: str) -> str:
        return f"{self._path}:{name}" if self._is_zip else str(self._path / name)

    def _zipfile(self) -> zipfile.ZipFile:
        if self._zip is None or self._zip_pid != os.getpid():
            try:
                self._zip = zipfile.ZipFile(self._path)
            except (OSError, zipfile.BadZipFile) as err:
                raise UserError(f"{self._path} is not a readable zip ({one_line(err)})") from None
            self._zip_pid = os.getpid()
        return self._zip

    def _close(self) -> None:
        if self._zip is not None and self._zip_pid == os.getpid():
            self._zip.close()
        self._zip = None

    @contextmanager
    def _open(self, name: str) -> Iterator[IO[bytes]]:
        if self._is_zip:
            with self._zipfile().open(name) as stream:
                yield stream
        else:
            with open(self._path / name, "rb") as stream:
                yield stream

    def _scan_zip(self) -> tuple[list[str], dict[str, str], bytes | None]:
        """(image names, name -> "crc:size", dataset.json bytes or None) from the directory."""
        zf = self._zipfile()
        keys: dict[str, str] = {}
        labels_raw = None
        for info in zf.infolist():
            name = info.filename
            _check_entry_name(self._path, name)
            if info.is_dir() or _is_hidden(name):
                continue
            if name == LABELS_ENTRY:
                with zf.open(info) as stream:
                    labels_raw = _read_capped(stream, self._where(name), MAX_JSON_BYTES)
            if not name.lower().endswith(IMAGE_SUFFIXES):
                continue
            if name in keys:
                raise UserError(f"{self._path} holds {name} twice: archive refused")
            if info.file_size > MAX_PICTURE_BYTES:
                raise UserError(f"{self._where(name)} is larger than {MAX_PICTURE_BYTES >> 20} MiB")
            if info.flag_bits & 0x1:
                raise UserError(f"{self._where(name)} is encrypted: archive refused")
            keys[name] = f"{info.CRC:08x}:{info.file_size}"
        return sorted(keys), keys, labels_raw

    def _scan_folder(self) -> tuple[list[str], dict[str, str], bytes | None]:
        names = []
        for path in self._path.rglob("*"):
            name = path.relative_to(self._path).as_posix()
            if name.lower().endswith(IMAGE_SUFFIXES) and not _is_hidden(name) and path.is_file():
                names.append(name)
        names.sort()
        labels_raw = None
        labels_path = self._path / LABELS_ENTRY
        if labels_path.is_file():
            with open(labels_path, "rb") as stream:
                labels_raw = _read_capped(stream, str(labels_path), MAX_JSON_BYTES)
        return names, {}, labels_raw

    def _parse_labels(self, raw: bytes | None, names: list[str]) -> list[int] | None:
        """The class of every image from dataset.json, or None when it holds no labels."""
        where = self._where(LABELS_ENTRY)
        if raw is None:
            return None
        try:
            doc = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise UserError(f"{where} is not valid JSON: {one_line(err)}") from None
        if not isinstance(doc, dict):
            raise UserError(f'{where} must hold an object {{"labels": ...}}')
        entries = doc.get("labels")
        if entries is None:
            return None
        if not isinstance(entries, list):
            raise UserError(f'{where}: "labels" must be null or a list of [name, class] pairs')
        table = {}
        for entry in entries:
            if not (
                isinstance(entry, list)
                and len(entry) == 2
                and isinstance(entry[0], str)
                and is_class(entry[1])
            ):
                raise UserError(
                    f"{where}: label {json.dumps(entry)[:60]} is not allowed: a [name, class] "
                    f"pair with an integer class from 0 to {MAX_CLASSES - 1}"
                )
            table[entry[0].replace("\\", "/")] = entry[1]
        missing = next((name for name in names if name not in table), None)
        if missing is not None:
            raise UserError(f"{where} has no label for {missing}")
        return [table[name] for name in names]

    def _check_headers(self) -> tuple[str, int]:
        """(mode, side) shared by every image; reads headers only, no pixels."""
        first = None
        for name in self._names:
            try:
                with self._open(name) as stream, Image.open(stream, formats=FORMATS) as img:
                    mode, size = img.mode, img.size
            except UserError:
                raise
            except UnidentifiedImageError:
                raise UserError(f"{self._where(name)} is not a PNG or JPEG picture") from None
            except Exception as err:  # Pillow and zipfile raise many types on malformed bytes
                raise UserError(
                    f"{self._where(name)} is not a readable PNG or JPEG picture ({one_line(err)})"
                ) from None
            side = check_side(self._where(name), size)
            if mode not in CHANNELS:
                raise UserError(
                    f"{self._where(name)} is {mode}: pictures must be RGB or greyscale (L) "
                    "without alpha (run prepare)"
                )
            if first is None:
                first = (name, mode, side)
            elif (mode, side) != first[1:]:
                raise UserError(
                    f"{self._where(name)} is {side} px {mode} but {first[0]} is {first[2]} px "
                    f"{first[1]}: all pictures must have the same size and mode"
                )
        assert first is not None  # the caller refuses an empty dataset
        return first[1], first[2]

    def _load(self, name: str) -> np.ndarray:
        """The pixels of one image as uint8 C x H x W, checked against the dataset's shape."""
        where = self._where(name)
        try:
            with self._open(name) as stream:
                data = _read_capped(stream, where, MAX_PICTURE_BYTES)
            with Image.open(io.BytesIO(data), formats=FORMATS) as img:
                # Checked before decoding: this bounds the pixels a hostile header can ask for.
                if img.size != (self._resolution,) * 2 or img.mode != self._mode:
                    raise UserError(
                        f"{where} is {img.size[0]}x{img.size[1]} {img.mode}, not "
                        f"{self._resolution} px {self._mode}: the dataset changed since it was "
                        "opened"
                    )
                array = np.asarray(img)
        except UserError:
            raise
        except Exception as err:  # a CRC mismatch, truncated data, a replaced archive...
            raise UserError(f"{where} cannot be read ({one_line(err)})") from None
        if array.ndim == 2:
            array = array[:, :, None]
        return array.transpose(2, 0, 1)

    def _content_key(self, name: str) -> str:
        if self._is_zip:
            return self._zip_keys[name]
        digest = hashlib.sha256()
        with open(self._path / name, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest()
