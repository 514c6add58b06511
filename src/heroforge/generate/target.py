"""The picture a projection aims at: read it safely, then prepare it like training data.

A model only knows pictures that look like its dataset: the subject cut from its background,
on white, framed in a square. So a real picture goes through the same steps as `heroforge
prepare` (segment -> on white -> square frame -> resize), at the model's resolution. When no
subject separates from the background, the picture is centre-cropped on white instead (and
the log says so); `raw=True` is for pictures that are prepared already: they are only padded
to a square with white and resized.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from heroforge.config import PrepareConfig
from heroforge.console import Log
from heroforge.data.ingest import DEFAULT_LIMITS, Decoded, IngestLimits, Skip, check_size
from heroforge.data.ingest import decode_image as decode_bytes
from heroforge.data.prepare import WORK_SIDE, frame, resize_square
from heroforge.data.segment import on_white, segment
from heroforge.errors import UserError

Method = Literal["prepared", "centre-crop", "raw"]
MIN_SUBJECT_PIXELS = 16  # fewer foreground pixels than this is no subject (as prepare decides)
_logger = logging.getLogger(__name__)


@dataclass
class Target:
    image: np.ndarray  # uint8 [R, R, C] at the model's resolution, C = the model's channels
    method: Method  # how it was made: "prepared", "centre-crop" (fallback) or "raw"


def read_target(path: str | Path, limits: IngestLimits = DEFAULT_LIMITS) -> Decoded:
    """Decode the picture at path, or raise a one-line UserError saying why it cannot be used.

    The same defensive decoder as `heroforge prepare` (size limits, decompression bombs, only
    picture formats); unlike prepare, a symlink is followed: the user named this file.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"no target picture at {path}")
    if not path.is_file():  # a folder, or a fifo that would block the read forever
        raise UserError(f"the target {path} is not a file: give one picture")
    try:
        with path.open("rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise UserError(f"the target {path} is not a regular file")
            check_size(info.st_size, limits)
            data = f.read(limits.max_file_bytes + 1)  # bounded even if the file grows
        return decode_bytes(data, path.name, limits)
    except Skip as skip:
        raise UserError(f"cannot read the target picture {path}: {skip}") from None
    except OSError as err:
        raise UserError(f"cannot read the target picture {path}: {err.strerror or err}") from None


def _flatten_on_white(decoded: Decoded) -> np.ndarray:
    if decoded.alpha is None:
        return decoded.rgb
    a = decoded.alpha.astype(np.float32)[..., None] / 255
    return np.clip(decoded.rgb * a + 255 * (1 - a) + 0.5, 0, 255).astype(np.uint8)


def pad_square(rgb: np.ndarray) -> np.ndarray:
    """The picture centred on a white square as big as its longer side."""
    h, w = rgb.shape[:2]
    side = max(h, w)
    canvas = np.full((side, side, 3), 255, np.uint8)
    top, left = (side - h) // 2, (side - w) // 2
    canvas[top : top + h, left : left + w] = rgb
    return canvas


def centre_crop(rgb: np.ndarray) -> np.ndarray:
    """The biggest centred square of the picture."""
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return rgb[top : top + side, left : left + side]


def _work_size(decoded: Decoded, resolution: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Shrunk for segmentation as prepare shrinks it, but never below the model's resolution
    (a 1024 px model should not be fitted to an enlarged 768 px analysis copy)."""
    rgb, alpha = decoded.rgb, decoded.alpha
    factor = min(1.0, max(WORK_SIDE, resolution) / max(rgb.shape[:2]))
    if factor == 1.0:
        return rgb, alpha
    size = (max(1, round(rgb.shape[1] * factor)), max(1, round(rgb.shape[0] * factor)))
    rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    alpha = None if alpha is None else cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
    return rgb, alpha


def _framed(decoded: Decoded, resolution: int, margin: float) -> np.ndarray | None:
    """prepare's framing of the subject, or None when no subject separates cleanly."""
    rgb, alpha = _work_size(decoded, resolution)
    seg = segment(rgb, alpha)
    cfg = PrepareConfig(margin=margin)
    if seg.mask.sum() < MIN_SUBJECT_PIXELS or seg.separability < cfg.min_separability:
        return None
    # PrepareConfig allows sizes from 32 up; a smaller model gets the 32 px frame shrunk.
    cfg = PrepareConfig(size=max(32, resolution), margin=margin)
    framed, _ = frame(on_white(rgb, seg), seg.mask, cfg)
    return np.asarray(framed)


def prepare_target(
    decoded: Decoded,
    resolution: int,
    channels: int = 3,
    raw: bool = False,
    margin: float = PrepareConfig.margin,
    log: Log | None = None,
) -> Target:
    """The decoded picture as a uint8 [resolution, resolution, channels] target.

    raw: the picture is prepared already (only padded square on white and resized).
    margin: free space around the subject, as prepare.margin of the training data.
    log: where the fallback note goes (default: this module's logger, as a warning).
    """
    log = log or _logger.warning
    method: Method
    if raw:
        rgb, method = pad_square(_flatten_on_white(decoded)), "raw"
    else:
        framed = _framed(decoded, resolution, margin)
        if framed is None:
            log(
                "no subject separates from the target's background: centre-cropped on white "
                "instead (give --raw if the picture is already prepared)"
            )
            rgb, method = centre_crop(_flatten_on_white(decoded)), "centre-crop"
        else:
            rgb, method = framed, "prepared"
    image = resize_square(np.ascontiguousarray(rgb), resolution)
    if channels == 1:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None]
    return Target(image=image, method=method)
