"""Read an official StyleGAN2-ADA network pickle without running anything from it.

What such a file holds (NVlabs/stylegan2-ada-pytorch: training_loop.py writes it with a plain
pickle.dump, torch_utils/persistence.py makes the networks "persistent"):

- a dict with G, D, G_ema, augment_pipe and training_set_kwargs;
- each network pickles as a call of torch_utils.persistence._reconstruct_persistent_obj(meta),
  meta = {type: "class", version: 6, module_src: the full source text of the module that
  defined the class, class_name, state}; state is the module's __dict__: _parameters, _buffers
  and _modules (sub-layers, persistent objects themselves) plus _init_args / _init_kwargs, the
  constructor arguments (nested dnnlib.util.EasyDict for mapping_kwargs, synthesis_kwargs...);
- tensors pickle the standard torch way: torch._utils._rebuild_tensor_v2 over a storage that
  torch.storage._load_from_bytes reads from a nested legacy torch.save stream, parameters
  through torch._utils._rebuild_parameter; layer gains such as 1/np.sqrt(fan_in) are numpy
  scalars; protocol 2 and 3 files spell sets and bytes through builtins.set and _codecs.encode.

Loading one the official way imports torch_utils and exec()s module_src, so a pickle can run
anything. Here find_class hands out only the inert stand-ins of _GLOBALS: the reconstruction
function becomes a recorder of class name, constructor arguments and tensors (module_src stays
a string nobody reads), storages go through torch.load(weights_only=True), and every tensor view
is checked against its storage. Any other global refuses the whole file before it is called.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeGuard

import numpy as np
import torch

from heroforge.errors import UserError

PERSISTENCE_VERSION = 6  # torch_utils.persistence._version of stylegan2-ada-pytorch
NETWORKS = ("G", "D", "G_ema")


class _RefusedError(Exception):
    """The pickle asks for something that is not plain data: the whole file is refused."""


def _one_line(err: BaseException, limit: int = 200) -> str:
    """The first line of an error message (torch's run over many lines), cut at limit
    characters (messages may quote names from the file, which can be of any length)."""
    lines = str(err).strip().splitlines()
    text = lines[0] if lines else type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Sealed:
    """Wraps what a stand-in returns (storages, tensors) and what find_class hands out.

    The BUILD opcode sets state on the object on top of the stack: on a bare tensor it would
    call Tensor.__setstate__, which re-points the tensor at any storage, offset and shape
    without our bounds check, and on a module-level function it would change its attributes
    for the rest of the process. A wrapper with no __dict__ whose __setstate__ refuses closes
    both doors.
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __call__(self, *args: Any) -> Any:
        return self.value(*args)

    def __setstate__(self, state: object) -> NoReturn:
        raise _RefusedError("it tries to set the state of a tensor, storage or function")


class _SealedType(type):
    """The metaclass of _KwargsDict: BUILD on the class itself must not add class attributes."""

    def __setattr__(cls, name: str, value: object) -> NoReturn:
        raise _RefusedError(f"it tries to change the class {cls.__name__}")


class _KwargsDict(dict, metaclass=_SealedType):
    """Stands in for dnnlib.util.EasyDict (the constructor-argument dicts): a plain dict."""


@dataclass(frozen=True)
class PersistentObject:
    """What the file says about one persistent network or layer; nothing of it was run."""

    class_name: str  # e.g. "Generator", "SynthesisBlock"
    init_args: tuple  # positional constructor arguments
    init_kwargs: dict  # keyword constructor arguments
    tensors: dict[str, torch.Tensor]  # its own parameters and buffers, by attribute name
    children: dict[str, PersistentObject]  # its sub-layers, by attribute name

    def __setstate__(self, state: object) -> NoReturn:
        raise _RefusedError("it tries to set the state of a network after building it")

    def walk(self) -> Iterator[tuple[str, PersistentObject]]:
        """(dotted path, object) for this object and every sub-layer, depth first.

        A loop, not recursion: a hostile file may nest objects very deeply. And no layer may
        sit in two places (official networks never share one): pickle memo references could
        otherwise make a few objects into a tree of 2**60 paths.
        """
        stack, seen = [("", self)], set()
        while stack:
            prefix, obj = stack.pop()
            if id(obj) in seen:
                raise ValueError(f"the layer at {prefix[:100]!r} also sits elsewhere")
            seen.add(id(obj))
            yield prefix, obj
            stack.extend((f"{prefix}{name}.", child) for name, child in obj.children.items())

    def named_tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor under its state_dict-style name, e.g. "synthesis.b4.conv1.weight"."""
        return {
            prefix + name: tensor
            for prefix, obj in self.walk()
            for name, tensor in obj.tensors.items()
        }


@dataclass(frozen=True)
class OfficialPickle:
    networks: dict[str, PersistentObject]  # "G", "D", "G_ema"
    augment_pipe: PersistentObject | None  # the ADA pipeline (its buffer p is the last p)
    training_set_kwargs: dict | None  # how the official code opened the dataset


# --- stand-ins: called by the unpickler with arguments from the file ---


def _load_storage(data: object) -> _Sealed:
    """A storage from its nested torch.save stream, read by torch's weights-only unpickler."""
    if not isinstance(data, bytes):
        raise ValueError("a tensor storage is not stored as bytes")
    try:
        storage = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # torch refuses non-data or damaged streams in many ways
        raise _RefusedError(f"a tensor storage is not plain data ({_one_line(err)})") from None
    if not isinstance(storage, torch.storage.TypedStorage):
        raise ValueError(f"a tensor storage holds a {type(storage).__name__}")
    return _Sealed(storage)


def _is_index_tuple(value: object) -> TypeGuard[tuple[int, ...]]:
    return isinstance(value, tuple) and all(isinstance(v, int) and v >= 0 for v in value)


def _rebuild_tensor(
    storage: object,
    offset: object,
    size: object,
    stride: object,
    requires_grad: object,
    backward_hooks: object,
    metadata: object = None,
) -> _Sealed:
    """A tensor viewing its storage, after checking that the view stays inside it.

    requires_grad, backward hooks and metadata are dropped: only the values matter here.
    """
    if not isinstance(storage, _Sealed) or not isinstance(
        storage.value, torch.storage.TypedStorage
    ):
        raise ValueError("a tensor without a storage")
    typed = storage.value
    untyped, dtype = typed._untyped_storage, typed.dtype
    if not isinstance(untyped, torch.UntypedStorage) or not isinstance(dtype, torch.dtype):
        raise ValueError("a tensor storage of an unknown kind")
    if not (isinstance(offset, int) and offset >= 0 and _is_index_tuple(size)):
        raise ValueError("a tensor with a bad offset or size")
    if not _is_index_tuple(stride) or len(stride) != len(size):
        raise ValueError("a tensor with a bad stride")
    elements = untyped.nbytes() // dtype.itemsize
    # The last element the view touches; an empty view touches none.
    last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
    if (0 not in size and last >= elements) or offset > elements:
        raise ValueError(f"a tensor of shape {list(size)} reaches past its storage")
    # Saved weights are dense: a view with more elements than its storage (stride 0) would
    # let a small file pose as huge tensors, and so as huge networks to build.
    if math.prod(size) > elements:
        raise ValueError(f"a tensor of shape {list(size)} repeats its storage")
    tensor = torch.empty(0, dtype=dtype).set_(untyped, offset, size, stride)
    return _Sealed(tensor)


def _rebuild_parameter(data: object, *_requires_grad_hooks_and_state: object) -> _Sealed:
    """A parameter is just its tensor here (nothing will be trained through this object)."""
    if not isinstance(data, _Sealed) or not isinstance(data.value, torch.Tensor):
        raise ValueError("a parameter without a tensor")
    return data


# numpy.dtype codes of plain numbers; anything else (objects, records) is refused.
_NUMPY_CODES = frozenset(["b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8"])


class _NumpyDType:
    """Stands in for numpy.dtype(code, align, copy) and its pickled state (byte order)."""

    def __init__(self, code: object, align: object = False, copy: object = True) -> None:
        if code not in _NUMPY_CODES:
            raise _RefusedError(f"it holds a numpy value of dtype {code!r}, not a plain number")
        self.code = code
        self.byteorder: Literal["<", ">", "|", "="] = "="

    def __setstate__(self, state: object) -> None:
        # numpy's state tuple: (version, byte order, ...); only the byte order matters.
        if not isinstance(state, tuple) or len(state) < 2 or state[1] not in ("<", ">", "|", "="):
            raise ValueError("a numpy dtype with a bad state")
        self.byteorder = state[1]


def _numpy_scalar(dtype: object, data: object) -> int | float | bool:
    """numpy.core.multiarray.scalar(dtype, raw bytes), as the plain Python number."""
    if not isinstance(dtype, _NumpyDType) or not isinstance(data, bytes):
        raise ValueError("a numpy scalar without dtype or bytes")
    np_dtype = np.dtype(dtype.code).newbyteorder(dtype.byteorder)
    if len(data) != np_dtype.itemsize:
        raise ValueError("a numpy scalar of the wrong size")
    return np.frombuffer(data, dtype=np_dtype)[0].item()


def _latin1_bytes(text: object, encoding: object) -> bytes:
    """_codecs.encode(text, "latin1"): how protocol 2 stores bytes."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise ValueError("_codecs.encode used for something other than bytes")
    return text.encode("latin-1")


def _names(value: object, what: str) -> dict:
    """A dict of the module state keyed by plain attribute names (a dot would let one entry
    pose as a tensor of another layer once names are joined)."""
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and k and "." not in k for k in value
    ):
        raise ValueError(f"a network's {what} is not a dict of attribute names")
    return value


def _module_tensors(state: dict) -> dict[str, torch.Tensor]:
    tensors = {}
    for key in ("_parameters", "_buffers"):  # frozen layers keep their weights as buffers
        for name, value in _names(state.get(key, {}), key).items():
            if value is None:  # e.g. a layer built without bias
                continue
            if not isinstance(value, _Sealed) or not isinstance(value.value, torch.Tensor):
                raise ValueError(f"{key}[{name!r}] is not a tensor")
            if name in tensors:
                raise ValueError(f"{name!r} is both a parameter and a buffer")
            tensors[name] = value.value
    return tensors


def _record_persistent_object(meta: object) -> PersistentObject:
    """Stands in for _reconstruct_persistent_obj(meta): records meta instead of exec()ing its
    module_src; the source text is never compiled, imported or kept."""
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise ValueError("a persistent object that is not a class instance")
    if meta.get("version") != PERSISTENCE_VERSION:
        raise ValueError(
            f"persistence version {meta.get('version')!r} (heroforge reads {PERSISTENCE_VERSION})"
        )
    class_name, source, state = meta.get("class_name"), meta.get("module_src"), meta.get("state")
    if (
        not isinstance(class_name, str)
        or not isinstance(source, str)
        or not isinstance(state, dict)
    ):
        raise ValueError("a persistent object without class name, source text or state")
    init_args, init_kwargs = state.get("_init_args", ()), state.get("_init_kwargs", {})
    if not isinstance(init_args, tuple | list) or not isinstance(init_kwargs, dict):
        raise ValueError(f"{class_name} has malformed constructor arguments")
    children = {}
    for name, child in _names(state.get("_modules", {}), "_modules").items():
        if child is None:
            continue
        if not isinstance(child, PersistentObject):
            raise ValueError(f"{class_name}.{name} is not a persistent layer")
        children[name] = child
    return PersistentObject(
        class_name, tuple(init_args), dict(init_kwargs), _module_tensors(state), children
    )


# The allow-list: (module, name) as the pickle spells it -> what it gets instead.
_GLOBALS: dict[tuple[str, str], Any] = {
    # containers of the module state, hooks and the set of non-persistent buffer names
    ("collections", "OrderedDict"): _Sealed(collections.OrderedDict),
    ("builtins", "set"): _Sealed(set),
    ("__builtin__", "set"): _Sealed(set),  # protocol 2 spelling
    ("_codecs", "encode"): _Sealed(_latin1_bytes),  # protocol 2 bytes
    # tensors
    ("torch.storage", "_load_from_bytes"): _Sealed(_load_storage),
    ("torch._utils", "_rebuild_tensor_v2"): _Sealed(_rebuild_tensor),
    ("torch._utils", "_rebuild_parameter"): _Sealed(_rebuild_parameter),
    ("torch._utils", "_rebuild_parameter_with_state"): _Sealed(_rebuild_parameter),
    # numpy scalars (numpy 1 and numpy 2 spell the module differently)
    ("numpy", "dtype"): _Sealed(_NumpyDType),
    ("numpy.core.multiarray", "scalar"): _Sealed(_numpy_scalar),
    ("numpy._core.multiarray", "scalar"): _Sealed(_numpy_scalar),
    # the official code's own names, as inert recorders
    ("dnnlib.util", "EasyDict"): _KwargsDict,  # a class: NEWOBJ needs one
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _Sealed(_record_persistent_object),
}


def _refusal(module: str, name: str) -> str:
    if module.startswith("dnnlib.tflib"):
        return (
            "it is a TensorFlow StyleGAN pickle; heroforge imports the PyTorch pickles of "
            "stylegan2-ada-pytorch"
        )
    return (
        f"it asks for {module[:80]}.{name[:80]}, which is not on heroforge's list of harmless names"
    )


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Callable[..., Any]:
        found = _GLOBALS.get((module, name))
        if found is None:
            raise _RefusedError(_refusal(module, name))
        return found


def _official_contents(path: Path, data: object) -> OfficialPickle:
    """Check that the unpickled object is an official network snapshot."""
    if not isinstance(data, dict):
        raise UserError(f"{path} is not a StyleGAN2-ADA network pickle: it holds a {_kind(data)}")
    missing = [name for name in NETWORKS if name not in data]
    if missing:
        raise UserError(
            f"{path} is not a StyleGAN2-ADA network pickle: it has no {', '.join(missing)}"
        )
    for name in NETWORKS:
        if not isinstance(data[name], PersistentObject):
            raise UserError(f"{path}: {name} is a {_kind(data[name])}, not an official network")
        try:
            for _ in data[name].walk():  # once here, so that later walks are known to end
                pass
        except ValueError as err:
            raise UserError(f"{path}: {name}: {err}") from None
    augment = data.get("augment_pipe")
    training_set = data.get("training_set_kwargs")
    return OfficialPickle(
        networks={name: data[name] for name in NETWORKS},
        augment_pipe=augment if isinstance(augment, PersistentObject) else None,
        training_set_kwargs=training_set if isinstance(training_set, dict) else None,
    )


def _kind(value: object) -> str:
    name = value.class_name if isinstance(value, PersistentObject) else type(value).__name__
    return name[:80]  # a class name from the file can be of any length


def read_official_pickle(path: str | Path) -> OfficialPickle:
    """The networks of an official StyleGAN2-ADA pickle as inert records, or a UserError.

    Nothing from the file is imported or run: see the module docstring for how.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = _RestrictedUnpickler(f).load()
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror or err}") from None
    except _RefusedError as err:
        raise UserError(f"refusing {path}: {err}; nothing from it was run") from None
    except Exception as err:  # a damaged or hostile stream can make unpickling fail anywhere
        raise UserError(f"{path} is not a readable network pickle ({_one_line(err)})") from None
    return _official_contents(path, data)
