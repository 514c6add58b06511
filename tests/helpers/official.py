"""Official StyleGAN2-ADA network pickles, written the way stylegan2-ada-pytorch writes them.

Every network and layer a persistent object (a call of torch_utils.persistence.
_reconstruct_persistent_obj with class name, module source text, and the module's __dict__
with its constructor arguments), constructor arguments as dnnlib.util.EasyDict, tensors and
parameters pickled by torch, layer gains as numpy scalars. The official layer tree and tensor
names are rebuilt from the official architecture, independently of heroforge's modules. The
stand-in of _reconstruct_persistent_obj does what the real one does with the source: it exec()s
it, and the source writes a marker file; so a marker that stays absent proves that the reader
never reached the official reconstruction. Shared by the import tests and by the tests of every
command that takes an official pickle directly.
"""

from __future__ import annotations

import math
import pickle
import sys
import types
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

RES, Z, W, C_DIM, MAPPING_LAYERS = 32, 16, 16, 3, 2
BASE, CMAX = 256, 32  # channels: 32 at 4 and 8 px, 16 at 16 px, 8 at 32 px
FIR = torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64


@dataclass
class OfficialCode:
    """Stand-ins for the modules an official pickle names, so that the tests can write one."""

    marker: Path  # written by the embedded source if anything ever runs it
    source: str  # the module_src every persistent object carries
    reconstruct: types.FunctionType
    easydict: type
    tf_network: type


def install_official_code(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> OfficialCode:
    """Stand-in official modules in sys.modules for this test (the `official` fixtures)."""
    marker = tmp_path / "the-embedded-source-ran"
    source = (
        "# stands for training/networks.py, which official pickles carry as text\n"
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
    )

    def _reconstruct_persistent_obj(meta):  # what torch_utils.persistence does: exec the source
        exec(meta["module_src"], {})
        raise AssertionError("the official reconstruction was called")

    modules = {name: types.ModuleType(name) for name in ("torch_utils", "dnnlib", "dnnlib.tflib")}
    modules["torch_utils.persistence"] = persistence = types.ModuleType("torch_utils.persistence")
    modules["dnnlib.util"] = util = types.ModuleType("dnnlib.util")
    modules["dnnlib.tflib.network"] = tflib = types.ModuleType("dnnlib.tflib.network")
    _reconstruct_persistent_obj.__module__ = persistence.__name__
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    util.EasyDict = type("EasyDict", (dict,), {"__module__": "dnnlib.util"})
    tflib.Network = type("Network", (), {"__module__": "dnnlib.tflib.network"})
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return OfficialCode(marker, source, _reconstruct_persistent_obj, util.EasyDict, tflib.Network)


@dataclass
class Layer:
    """One persistent object of an official network, pickled as stylegan2-ada-pytorch does."""

    class_name: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    buffers: dict = field(default_factory=dict)
    modules: dict = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)
    code: OfficialCode | None = None

    def __reduce__(self):
        hooks = ("_backward_hooks", "_forward_hooks", "_forward_pre_hooks", "_state_dict_hooks")
        state = {
            "training": False,
            "_parameters": OrderedDict(
                (k, torch.nn.Parameter(v, requires_grad=False)) for k, v in self.params.items()
            ),
            "_buffers": OrderedDict(self.buffers),
            "_non_persistent_buffers_set": set(),
            **{hook: OrderedDict() for hook in (*hooks, "_load_state_dict_pre_hooks")},
            "_modules": OrderedDict(self.modules),
            **self.attrs,
            "_init_args": self.args,
            "_init_kwargs": dict(self.kwargs),  # **kwargs: a dict of EasyDicts and values
        }
        meta = {
            "type": "class",
            "version": 6,
            "module_src": self.code.source,
            "class_name": self.class_name,
            "state": state,
        }
        return self.code.reconstruct, (meta,)

    def tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        found = {prefix + k: v for k, v in {**self.params, **self.buffers}.items()}
        for name, child in self.modules.items():
            if child is not None:
                found.update(child.tensors(f"{prefix}{name}."))
        return found

    def at(self, path: str) -> Layer:
        return self if not path else self.modules[path.split(".")[0]].at(path.partition(".")[2])


class Builder:
    """The official layer tree of a tiny configuration, with random values everywhere."""

    def __init__(self, code: OfficialCode, g_arch="skip", d_arch="resnet", c_dim=C_DIM) -> None:
        self.code, self.g_arch, self.d_arch = code, g_arch, d_arch
        self.c_dim = c_dim  # 0: unconditional, without the label mappings
        self.gen = torch.Generator().manual_seed(0)

    def rand(self, *shape) -> torch.Tensor:
        return torch.randn(shape, generator=self.gen)

    def layer(self, class_name, args=(), **parts) -> Layer:
        return Layer(class_name, args, code=self.code, **parts)

    def fc(self, fan_in, fan_out, lr=1.0, act="linear") -> Layer:
        gains = {
            "activation": act,
            "weight_gain": np.float64(lr / np.sqrt(fan_in)),
            "bias_gain": lr,
        }
        params = {"weight": self.rand(fan_out, fan_in), "bias": self.rand(fan_out)}
        return self.layer("FullyConnectedLayer", (fan_in, fan_out), params=params, attrs=gains)

    def conv(self, cin, cout, k, bias=True, act="lrelu", up=1, down=1) -> Layer:
        params = {"weight": self.rand(cout, cin, k, k)}
        if bias:
            params["bias"] = self.rand(cout)
        attrs = {"activation": act, "up": up, "down": down, "padding": k // 2}
        attrs["weight_gain"] = np.float64(1 / np.sqrt(cin * k * k))
        attrs["act_gain"] = np.sqrt(2) if act == "lrelu" else 1
        return self.layer(
            "Conv2dLayer",
            (cin, cout, k),
            params=params,
            buffers={"resample_filter": FIR},
            attrs=attrs,
        )

    def synthesis_layer(self, cin, cout, res, up=1) -> Layer:
        params = {
            "weight": self.rand(cout, cin, 3, 3),
            "noise_strength": self.rand(),
            "bias": self.rand(cout),
        }
        buffers = {"resample_filter": FIR, "noise_const": self.rand(res, res)}
        modules = {"affine": self.fc(W, cin)}
        return self.layer(
            "SynthesisLayer", (cin, cout), params=params, buffers=buffers, modules=modules
        )

    def torgb(self, cin) -> Layer:
        params = {"weight": self.rand(3, cin, 1, 1), "bias": self.rand(3)}
        return self.layer(
            "ToRGBLayer", (cin, 3), params=params, modules={"affine": self.fc(W, cin)}
        )

    def synthesis_block(self, cin, cout, res) -> Layer:
        modules = {}
        params = {} if cin else {"const": self.rand(cout, res, res)}
        if cin:
            modules["conv0"] = self.synthesis_layer(cin, cout, res, up=2)
        modules["conv1"] = self.synthesis_layer(cout, cout, res)
        if res == RES or self.g_arch == "skip":
            modules["torgb"] = self.torgb(cout)
        if cin and self.g_arch == "resnet":
            modules["skip"] = self.conv(cin, cout, 1, bias=False, act="linear", up=2)
        return self.layer(
            "SynthesisBlock",
            (cin, cout),
            params=params,
            buffers={"resample_filter": FIR},
            modules=modules,
        )

    def mapping(self, z_dim, w_dim, lr, num_layers, w_avg=True) -> Layer:
        modules = {"embed": self.fc(self.c_dim, w_dim)} if self.c_dim else {}
        features = [z_dim + (w_dim if self.c_dim else 0)] + [w_dim] * num_layers
        for i in range(num_layers):
            modules[f"fc{i}"] = self.fc(features[i], features[i + 1], lr=lr, act="lrelu")
        buffers = {"w_avg": self.rand(w_dim)} if w_avg else {}
        return self.layer("MappingNetwork", buffers=buffers, modules=modules)

    def generator(self) -> Layer:
        resolutions = [2**i for i in range(2, int(math.log2(RES)) + 1)]
        blocks = {
            f"b{r}": self.synthesis_block(channels(r // 2) if r > 4 else 0, channels(r), r)
            for r in resolutions
        }
        modules = {
            "synthesis": self.layer("SynthesisNetwork", modules=blocks),
            "mapping": self.mapping(Z, W, 0.01, MAPPING_LAYERS),
        }
        kwargs = {
            "z_dim": Z,
            "w_dim": W,
            "mapping_kwargs": self.code.easydict(num_layers=MAPPING_LAYERS),
            "synthesis_kwargs": self.code.easydict(
                channel_base=BASE, channel_max=CMAX, num_fp16_res=4, conv_clamp=256
            ),
            "c_dim": self.c_dim,
            "img_resolution": RES,
            "img_channels": 3,
        }
        if self.g_arch != "skip":
            kwargs["synthesis_kwargs"]["architecture"] = self.g_arch
        return self.layer("Generator", kwargs=kwargs, modules=modules)

    def discriminator_block(self, res) -> Layer:
        tmp, out = channels(res), channels(res // 2)
        modules = {}
        if res == RES or self.d_arch == "skip":
            modules["fromrgb"] = self.conv(3, tmp, 1)
        modules["conv0"] = self.conv(tmp, tmp, 3)
        modules["conv1"] = self.conv(tmp, out, 3, down=2)
        if self.d_arch == "resnet":
            modules["skip"] = self.conv(tmp, out, 1, bias=False, act="linear", down=2)
        return self.layer("DiscriminatorBlock", buffers={"resample_filter": FIR}, modules=modules)

    def discriminator(self) -> Layer:
        modules = {f"b{r}": self.discriminator_block(r) for r in (32, 16, 8)}
        cmap = channels(4)
        if self.c_dim:
            modules["mapping"] = self.mapping(0, cmap, 0.01, 8, w_avg=False)
        epilogue = {
            "mbstd": self.layer("MinibatchStdLayer", attrs={"group_size": 4, "num_channels": 1}),
            "conv": self.conv(cmap + 1, cmap, 3),
            "fc": self.fc(cmap * 16, cmap, act="lrelu"),
            "out": self.fc(cmap, cmap if self.c_dim else 1),
        }
        if self.d_arch == "skip":
            epilogue["fromrgb"] = self.conv(3, cmap, 1)
        modules["b4"] = self.layer("DiscriminatorEpilogue", modules=epilogue)
        kwargs = {
            "block_kwargs": self.code.easydict(),
            "mapping_kwargs": self.code.easydict(),
            "epilogue_kwargs": self.code.easydict(mbstd_group_size=4),
            "channel_base": BASE,
            "channel_max": CMAX,
            "num_fp16_res": 4,
            "conv_clamp": 256,
            "c_dim": self.c_dim,
            "img_resolution": RES,
            "img_channels": 3,
        }
        if self.d_arch != "resnet":
            kwargs["architecture"] = self.d_arch
        return self.layer("Discriminator", kwargs=kwargs, modules=modules)

    def snapshot(self) -> dict:
        """The dict training_loop.py pickles; G_ema gets values of its own."""
        return {
            "training_set_kwargs": {
                "class_name": "training.dataset.ImageFolderDataset",
                "xflip": True,
            },
            "G": self.generator(),
            "D": self.discriminator(),
            "G_ema": self.generator(),
            "augment_pipe": self.layer("AugmentPipe", buffers={"p": torch.tensor(0.25)}),
        }


def channels(res: int) -> int:
    return min(BASE // res, CMAX)


def split_form(net: torch.nn.Module) -> torch.nn.Module:
    """Skip the modulated-conv planner's timing runs (seconds on a busy CPU); same numbers."""
    for module in net.modules():
        if hasattr(module, "modconv"):
            module.modconv = "split"
    return net


def write(path: Path, obj: object, protocol: int = 3) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=protocol))  # 3: Python 3.7's default
    return path
