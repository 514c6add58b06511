"""The heroforge Config of an official StyleGAN2-ADA network, from its constructor arguments.

The pickle records how Generator(...) and Discriminator(...) were called (see
official_pickle.py). Each argument either sets a heroforge config key, or must have the one
value heroforge's networks implement (e.g. use_noise=True, the [1,3,3,1] filter), or only
changes speed or training (e.g. fp16_channels_last, freeze_layers) and is ignored. Missing
arguments take the official defaults, which are not always heroforge's (the official mapping
network has 8 layers unless told otherwise). An argument nobody knows is refused rather than
guessed at: the networks would be built differently from the ones that were trained.
"""

from __future__ import annotations

import reprlib
from pathlib import Path
from typing import Any

from heroforge.config import Config, ConfigError
from heroforge.errors import UserError
from heroforge.nets.layers import block_channels
from heroforge.nets.official_pickle import OfficialPickle, PersistentObject

# Positional order of the official constructors, for arguments recorded without a name.
G_PARAMS: tuple[str, ...] = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")
G_PARAMS += ("mapping_kwargs", "synthesis_kwargs")
D_PARAMS: tuple[str, ...] = (
    "c_dim",
    "img_resolution",
    "img_channels",
    "architecture",
    "channel_base",
)
D_PARAMS += ("channel_max", "num_fp16_res", "conv_clamp", "cmap_dim", "block_kwargs")
D_PARAMS += ("mapping_kwargs", "epilogue_kwargs")
ARCHITECTURES = ("orig", "skip", "resnet")
FIR_TAPS = [1, 3, 3, 1]
W_AVG_BETA = 0.995  # the decay heroforge's mapping network tracks w_avg with
D_MAPPING_LAYERS = 8  # heroforge's conditional D always maps labels through 8 layers


class Arguments:
    """One constructor's arguments (or one nested *_kwargs dict), taken one by one; finish()
    refuses whatever was not taken."""

    def __init__(self, where: str, values: dict[str, Any]) -> None:
        self.where = where  # e.g. "G.synthesis_kwargs", for messages
        self.values = dict(values)

    def _refuse(self, name: str, value: object, allowed: str) -> UserError:
        # reprlib: the value comes from the file and may be huge or deeply nested
        return UserError(f"{self.where}.{name} = {reprlib.repr(value)} is not supported: {allowed}")

    def take(self, name: str, default: object = None) -> Any:
        return self.values.pop(name, default)

    def integer(self, name: str, default: int | None = None, minimum: int = 0) -> int:
        value = self.take(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self._refuse(name, value, f"an integer >= {minimum}")
        return value

    def number(self, name: str, default: float) -> float:
        return self._positive(name, self.take(name, default))

    def clamp(self, name: str) -> float:
        """conv_clamp: None (off, the official default) or a positive number; 0 = off here."""
        value = self.take(name)
        return 0.0 if value is None else self._positive(name, value)

    def _positive(self, name: str, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise self._refuse(name, value, "a positive number")
        return float(value)

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.take(name, default)
        if value not in allowed:
            raise self._refuse(name, value, "one of " + ", ".join(allowed))
        return value

    def fixed(self, name: str, *allowed: object) -> None:
        """An argument heroforge implements for these values only (the first is the default)."""
        value = self.take(name, allowed[0])
        if isinstance(value, tuple):
            value = list(value)
        # True == 1 in Python, but use_noise=1 is not an official value: keep bools apart.
        if not any(value == a and isinstance(value, bool) == isinstance(a, bool) for a in allowed):
            shown = " or ".join(repr(a) for a in allowed)
            raise self._refuse(name, value, f"heroforge's networks implement {shown} only")

    def group(self, name: str) -> Arguments:
        value = self.take(name, {})
        if not isinstance(value, dict):
            raise self._refuse(name, value, "a dict of arguments")
        return Arguments(f"{self.where}.{name}", value)

    def finish(self) -> None:
        if self.values:
            name = sorted(map(str, self.values))[0][:80]  # from the file: any length
            raise UserError(
                f"{self.where}.{name} is a constructor argument heroforge does not know (it "
                "imports stylegan2-ada-pytorch networks)"
            )


def constructor_arguments(where: str, obj: PersistentObject, params: tuple[str, ...]) -> Arguments:
    """The arguments of one network, positional ones named by the official signature."""
    if len(obj.init_args) > len(params):
        raise UserError(f"{where} was built with {len(obj.init_args)} positional arguments")
    values = dict(zip(params, obj.init_args, strict=False))
    for name, value in obj.init_kwargs.items():
        if name in values:
            raise UserError(f"{where}.{name} was given twice")
        values[name] = value
    return Arguments(where, values)


def generator_settings(args: Arguments) -> dict[str, Any]:
    """Generator(...)'s arguments as {"data": {...}, "network": {...}, "c_dim": n}."""
    data = {"resolution": args.integer("img_resolution"), "channels": args.integer("img_channels")}
    c_dim = args.integer("c_dim")
    w_dim = args.integer("w_dim", minimum=1)
    net: dict[str, Any] = {"z_dim": args.integer("z_dim", minimum=1), "w_dim": w_dim}
    mapping, synthesis = args.group("mapping_kwargs"), args.group("synthesis_kwargs")
    net["mapping_layers"] = mapping.integer("num_layers", 8, minimum=1)
    net["mapping_lr_mult"] = mapping.number("lr_multiplier", 0.01)
    if c_dim:
        mapping.fixed("embed_features", None, w_dim)
    else:  # no label, no embedding (converted TensorFlow pickles still name its size)
        mapping.take("embed_features")
    mapping.fixed("layer_features", None, w_dim)
    mapping.fixed("activation", "lrelu")
    mapping.fixed("w_avg_beta", W_AVG_BETA)
    net["channel_base"] = synthesis.integer("channel_base", 32768, minimum=1)
    net["channel_max"] = synthesis.integer("channel_max", 512, minimum=1)
    net["num_fp16_res"] = synthesis.integer("num_fp16_res", 0)
    net["conv_clamp"] = synthesis.clamp("conv_clamp")
    net["g_architecture"] = synthesis.choice("architecture", "skip", ARCHITECTURES)
    synthesis.fixed("resample_filter", FIR_TAPS)
    synthesis.fixed("use_noise", True)
    synthesis.fixed("activation", "lrelu")
    synthesis.fixed("kernel_size", 3)
    synthesis.take("fp16_channels_last")  # memory layout on the GPU only
    for group in (args, mapping, synthesis):
        group.finish()
    return {"data": data, "network": net, "c_dim": c_dim}


def discriminator_settings(args: Arguments) -> dict[str, Any]:
    """Discriminator(...)'s arguments, keyed like the config's data and network sections."""
    d: dict[str, Any] = {
        "c_dim": args.integer("c_dim"),
        "resolution": args.integer("img_resolution"),
        "channels": args.integer("img_channels"),
        "d_architecture": args.choice("architecture", "resnet", ARCHITECTURES),
        "channel_base": args.integer("channel_base", 32768, minimum=1),
        "channel_max": args.integer("channel_max", 512, minimum=1),
        "num_fp16_res": args.integer("num_fp16_res", 0),
        "conv_clamp": args.clamp("conv_clamp"),
    }
    blocks, mapping = args.group("block_kwargs"), args.group("mapping_kwargs")
    epilogue = args.group("epilogue_kwargs")
    blocks.fixed("activation", "lrelu")
    blocks.fixed("resample_filter", FIR_TAPS)
    blocks.take("freeze_layers")  # Freeze-D: which layers training updates
    blocks.take("fp16_channels_last")
    d["mbstd_group"] = epilogue.integer("mbstd_group_size", 4, minimum=1)
    d["mbstd_channels"] = epilogue.integer("mbstd_num_channels", 1)
    epilogue.fixed("activation", "lrelu")
    if d["c_dim"]:  # the label mapping exists only for labelled data
        cmap_dim = block_channels(4, d["channel_base"], d["channel_max"])
        args.fixed("cmap_dim", None, cmap_dim)
        mapping.fixed("num_layers", D_MAPPING_LAYERS)
        mapping.fixed("lr_multiplier", 0.01)
        mapping.fixed("embed_features", None, cmap_dim)
        mapping.fixed("layer_features", None, cmap_dim)
        mapping.fixed("activation", "lrelu")
    else:  # unused without labels (converted TensorFlow pickles still carry them)
        args.take("cmap_dim")
        mapping.values.clear()
    for group in (args, blocks, mapping, epilogue):
        group.finish()
    return d


# What G and D must agree on, because one heroforge setting builds both.
SHARED: tuple[str, ...] = (
    "c_dim",
    "resolution",
    "channels",
    "channel_base",
    "channel_max",
    "num_fp16_res",
)
SHARED += ("conv_clamp",)


def config_of(path: Path, contents: OfficialPickle) -> tuple[Config, int]:
    """(heroforge config, c_dim) of the networks in an official pickle.

    Sections other than data and network keep heroforge's defaults (the reference run's
    training settings): the pickle does not say how its networks were trained.
    """
    nets = contents.networks
    g = generator_settings(constructor_arguments("G", nets["G"], G_PARAMS))
    if generator_settings(constructor_arguments("G_ema", nets["G_ema"], G_PARAMS)) != g:
        raise UserError(f"{path}: G and G_ema were built with different arguments")
    d = discriminator_settings(constructor_arguments("D", nets["D"], D_PARAMS))
    data, network = g["data"], g["network"]
    g_flat = {"c_dim": g["c_dim"], **data, **network}
    for key in SHARED:
        if d[key] != g_flat[key]:
            raise UserError(
                f"{path}: D has {key} = {d[key]!r} but G has {g_flat[key]!r}; heroforge builds "
                "both from one setting"
            )
    network.update({k: d[k] for k in ("d_architecture", "mbstd_group", "mbstd_channels")})
    data["use_labels"] = g["c_dim"] > 0
    xflip = (contents.training_set_kwargs or {}).get("xflip")
    if isinstance(xflip, bool):
        data["mirror"] = xflip
    try:
        cfg = Config().replace({"data": data, "network": network})
    except ConfigError as err:
        raise UserError(f"{path}: the networks have no heroforge configuration: {err}") from None
    return cfg, g["c_dim"]
