"""Export networks for other tools: ONNX and TorchScript of the generator, or the official
StyleGAN2-ADA state dicts with the constructor arguments that rebuild the official networks.

ONNX and TorchScript hold the generator as a traced graph with a free batch size:

    part       inputs                                  output
    all        z [N, z_dim], c [N, c_dim]*, psi []     img [N, C, R, R] (about -1..1, float32)
    mapping    z [N, z_dim], c [N, c_dim]*, psi []     ws [N, num_ws, w_dim], truncated
    synthesis  ws [N, num_ws, w_dim]                   img [N, C, R, R]

    * c only for a conditional model (one-hot labels), as G(z, c, truncation_psi) takes them.

psi pulls every w towards the average w (truncation, as `generate --trunc`), and the synthesis
uses the model's fixed noise (`--noise const`), so the same z gives heroforge's picture; pixels
are img * 127.5 + 128, clamped to 0..255. The traced graphs run the "split" modulated
convolution (one shared-weight convolution for the whole batch), the form whose graph does not
depend on the batch size. ONNX goes through torch's TorchScript-based exporter (dynamo=False):
it needs only the `onnx` package, whose versions still accept the protobuf < 5 that MediaPipe
needs, while the newer exporter also needs onnxscript and an onnx that needs protobuf >= 6.

The official state dict (torch.save of {"G": ..., "D": ..., "G_ema": ...}, plain tensors,
readable with torch.load(weights_only=True)) uses the official names, which heroforge's layers
share, plus the [1,3,3,1] resample_filter buffers the official layers store and heroforge
rebuilds; its JSON beside it holds the official Generator(...) / Discriminator(...) arguments.
"""

from __future__ import annotations

import copy
import importlib.util
import io
import json
import re
import warnings
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from heroforge.errors import UserError, write_failure
from heroforge.fileio import atomic_write_bytes, atomic_write_text
from heroforge.nets.generator import Generator
from heroforge.nets.ops import setup_filter
from heroforge.nets.weights import LoadedNetworks

FORMATS = ("onnx", "torchscript", "official-state-dict")
PARTS = ("all", "mapping", "synthesis")
Part = Literal["all", "mapping", "synthesis"]
ONNX_OPSET = 17  # ConvTranspose, Expand and Lerp-free truncation: well inside every runtime
TRACE_BATCH = 2  # traced with two images; the batch axis stays free in the exported graph

# The official modules that keep a resample_filter buffer (heroforge rebuilds the filter): every
# convolution layer but toRGB, every synthesis block, every discriminator block but the b4 head.
FILTER_OWNERS = re.compile(
    r"(?:synthesis\.)?b\d+\.(?:conv0|conv1|conv|skip|fromrgb)|synthesis\.b\d+|b(?!4$)\d+"
)


class _Mapping(nn.Module):
    """z (and c), psi -> ws, truncated on every layer towards the average w."""

    def __init__(self, G: Generator) -> None:  # noqa: N803
        super().__init__()
        self.mapping = G.mapping

    def forward(self, z: torch.Tensor, *c_and_psi: torch.Tensor) -> torch.Tensor:
        *c, psi = c_and_psi
        ws = self.mapping(z, c[0] if c else None)
        return self.mapping.w_avg + (ws - self.mapping.w_avg) * psi


class _Synthesis(nn.Module):
    def __init__(self, G: Generator) -> None:  # noqa: N803
        super().__init__()
        self.synthesis = G.synthesis

    def forward(self, ws: torch.Tensor) -> torch.Tensor:
        return self.synthesis(ws, noise_mode="const")


class _Whole(nn.Module):
    def __init__(self, G: Generator) -> None:  # noqa: N803
        super().__init__()
        self.mapping, self.synthesis = _Mapping(G), _Synthesis(G)

    def forward(self, z: torch.Tensor, *c_and_psi: torch.Tensor) -> torch.Tensor:
        return self.synthesis(self.mapping(z, *c_and_psi))


def _traceable(G: Generator) -> Generator:  # noqa: N803
    """A CPU fp32 copy of G in eval mode that runs the batch-independent modulated conv."""
    G = copy.deepcopy(G).to("cpu", torch.float32).eval().requires_grad_(False)  # noqa: N806
    for module in G.modules():
        if hasattr(module, "modconv"):
            setattr(module, "modconv", "split")  # noqa: B010 (mypy: module is any nn.Module)
    return G


def _example(G: Generator, part: Part) -> tuple[nn.Module, tuple[torch.Tensor, ...], list[str]]:  # noqa: N803
    """The module to trace, example inputs, and their names."""
    if part == "synthesis":
        ws = torch.randn(TRACE_BATCH, G.num_ws, G.w_dim)
        return _Synthesis(G), (ws,), ["ws"]
    z = torch.randn(TRACE_BATCH, G.z_dim)
    inputs, names = [z], ["z"]
    if G.c_dim:
        inputs.append(torch.eye(G.c_dim)[torch.arange(TRACE_BATCH) % G.c_dim])
        names.append("c")
    inputs.append(torch.tensor(0.7))
    names.append("psi")
    module = _Whole(G) if part == "all" else _Mapping(G)
    return module, tuple(inputs), names


def export_generator(G: Generator, fmt: str, out: str | Path, part: Part = "all") -> Path:  # noqa: N803
    """Write G (or its mapping or synthesis network) to out as ONNX or TorchScript."""
    if fmt not in ("onnx", "torchscript"):
        raise UserError(f"--format {fmt!r} does not export a generator: onnx or torchscript")
    if part not in PARTS:
        raise UserError(f"--part {part!r} is not one of {', '.join(PARTS)}")
    if fmt == "onnx" and importlib.util.find_spec("onnx") is None:
        raise UserError("ONNX export needs the onnx package: pip install 'heroforge[export]'")
    module, inputs, names = _example(_traceable(G), part)
    output = "ws" if part == "mapping" else "img"
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # the tracer warns about every shape check it sees; the shapes it fixes are the
        # networks' own (weights, filters), and the batch axis is left free below
        warnings.simplefilter("ignore")
        if fmt == "torchscript":
            torch.jit.save(torch.jit.trace(module, inputs), buf)
        else:
            free = {name: {0: "batch"} for name in [*names, output] if name != "psi"}
            torch.onnx.export(
                module,
                inputs,
                buf,  # type: ignore[arg-type]  # the TorchScript-based exporter takes files too
                input_names=names,
                output_names=[output],
                dynamic_axes=free,
                opset_version=ONNX_OPSET,
                dynamo=False,
            )
    return _write(Path(out), buf.getvalue())


def _write(out: Path, data: bytes) -> Path:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out, data)
    except OSError as err:
        raise write_failure(f"cannot write {out}", err) from None
    return out


def official_arguments(loaded: LoadedNetworks) -> dict[str, dict[str, Any]]:
    """The official Generator(...) and Discriminator(...) keyword arguments of these networks:
    the reverse of official_config.py, which reads them."""
    cfg, c_dim = loaded.cfg, loaded.c_dim
    net, data = cfg.network, cfg.data
    clamp = net.conv_clamp or None  # 0 = off here, None = off there
    shared = {"c_dim": c_dim, "img_resolution": data.resolution, "img_channels": data.channels}
    G = {  # noqa: N806
        "z_dim": net.z_dim,
        "w_dim": net.w_dim,
        **shared,
        "mapping_kwargs": {"num_layers": net.mapping_layers, "lr_multiplier": net.mapping_lr_mult},
        "synthesis_kwargs": {
            "channel_base": net.channel_base,
            "channel_max": net.channel_max,
            "num_fp16_res": net.num_fp16_res,
            "conv_clamp": clamp,
            "architecture": net.g_architecture,
        },
    }
    D = {  # noqa: N806
        **shared,
        "architecture": net.d_architecture,
        "channel_base": net.channel_base,
        "channel_max": net.channel_max,
        "num_fp16_res": net.num_fp16_res,
        "conv_clamp": clamp,
        "block_kwargs": {},
        "mapping_kwargs": {},
        "epilogue_kwargs": {
            "mbstd_group_size": net.mbstd_group,
            "mbstd_num_channels": net.mbstd_channels,
        },
    }
    return {"G": G, "D": D}


def official_state_dict(net: nn.Module) -> dict[str, torch.Tensor]:
    """net's tensors under their official names, with the filters the official layers keep."""
    state = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
    parts = [key.split(".") for key in state]
    owners = {".".join(p[:i]) for p in parts for i in range(1, len(p))}
    for owner in sorted(owners):
        if FILTER_OWNERS.fullmatch(owner):
            state[f"{owner}.resample_filter"] = setup_filter()
    return state


def export_official(loaded: LoadedNetworks, out: str | Path) -> tuple[Path, Path]:
    """out: torch.save({"G", "D", "G_ema": official state dicts}); out + .json: the arguments."""
    out = Path(out)
    names = [name for name in ("G", "D", "G_ema") if name in loaded.networks]
    if not names:
        held = ", ".join(sorted(loaded.networks)) or "nothing"
        raise UserError(f"the model holds no G, D or G_ema to export, only: {held}")
    buf = io.BytesIO()
    torch.save({name: official_state_dict(loaded.networks[name]) for name in names}, buf)
    arguments = official_arguments(loaded)
    record = {
        "format": "stylegan2-ada-pytorch state dicts",
        "networks": {name: "G" if name != "D" else "D" for name in names},
        "init_kwargs": arguments,
    }
    sidecar = out.with_name(out.name + ".json")
    _write(out, buf.getvalue())
    try:
        atomic_write_text(sidecar, json.dumps(record, indent=2) + "\n")
    except OSError as err:
        raise write_failure(f"cannot write {sidecar}", err) from None
    return out, sidecar
