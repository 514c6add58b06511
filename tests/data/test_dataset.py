import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from helpers.images import encode, random_pixels
from heroforge.data.archive import write_archive
from heroforge.data.dataset import ImageDataset
from heroforge.errors import UserError

COUNT = 12
SIDE = 32


def _archive(tmp_path: Path, pixels: list[np.ndarray], labels: list[int] | None = None) -> Path:
    """Prepared folder -> zip with write_archive; returns the zip."""
    images = tmp_path / "prep" / "images"
    images.mkdir(parents=True, exist_ok=True)
    for i, array in enumerate(pixels):
        (images / f"hero_{i:03d}.png").write_bytes(encode(array))
    classes = None if labels is None else {f"hero_{i:03d}.png": c for i, c in enumerate(labels)}
    out = tmp_path / "set.zip"
    write_archive(tmp_path / "prep", out, classes)
    return out


def _zip(path: Path, entries: dict[str, bytes]) -> Path:
    """A zip as the official dataset_tool (or a hostile user) might write it."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


@pytest.fixture
def pixels() -> list[np.ndarray]:
    return random_pixels(COUNT, SIDE, SIDE)


@pytest.fixture
def archive(tmp_path, pixels) -> Path:
    return _archive(tmp_path, pixels)


def _chw(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


def test_reads_back_our_archive(archive, pixels):
    ds = ImageDataset(archive, resolution=SIDE)
    assert (len(ds), ds.num_images, ds.resolution, ds.channels) == (COUNT, COUNT, SIDE, 3)
    assert (ds.c_dim, ds.has_labels) == (0, False)
    assert ds.names == tuple(f"00000/img{i:08d}.png" for i in range(COUNT))
    for i in range(COUNT):
        image, label = ds[i]
        assert image.dtype == torch.uint8
        assert image.shape == (3, SIDE, SIDE)
        assert torch.equal(image, _chw(pixels[i]))
        assert label.dtype == torch.float32
        assert label.shape == (0,)
    with pytest.raises(IndexError):
        ds[COUNT]


def test_reads_an_official_style_archive_with_labels(tmp_path, pixels):
    names = [f"00000/img{i:08d}.png" for i in range(4)]
    entries = {name: encode(pixels[i]) for i, name in enumerate(names)}
    entries["dataset.json"] = json.dumps({"labels": [[n, i % 2] for i, n in enumerate(names)]})
    entries["__MACOSX/00000/._img00000000.png"] = b"resource fork, not a picture"
    ds = ImageDataset(_zip(tmp_path / "official.zip", entries), use_labels=True)
    assert ds.names == tuple(names)
    assert (ds.has_labels, ds.c_dim) == (True, 2)
    assert torch.equal(ds[3][0], _chw(pixels[3]))
    assert ds[3][1].tolist() == [0.0, 1.0]


def test_mirror_doubles_the_length_with_flipped_copies(archive):
    ds = ImageDataset(archive, mirror=True)
    assert (len(ds), ds.num_images) == (2 * COUNT, COUNT)
    for i in range(COUNT):
        assert torch.equal(ds[COUNT + i][0], ds[i][0].flip(-1))
    assert not torch.equal(ds[COUNT][0], ds[0][0])


def test_labels_are_one_hot_and_max_images_keeps_the_class_count(tmp_path, pixels):
    labels = [i % 4 for i in range(COUNT)]
    path = _archive(tmp_path, pixels, labels)
    ds = ImageDataset(path, use_labels=True)
    assert ds.c_dim == 4
    for i in range(COUNT):
        assert ds[i][1].tolist() == [float(c == labels[i]) for c in range(4)]
    first = ImageDataset(path, use_labels=True, max_images=3)
    assert (len(first), first.c_dim) == (3, 4)  # classes counted over every image
    assert first.names == ds.names[:3]
    unused = ImageDataset(path)
    assert (unused.has_labels, unused.c_dim, unused[0][1].shape) == (True, 0, (0,))


def test_use_labels_without_labels_is_refused(archive):
    with pytest.raises(UserError, match="no class labels"):
        ImageDataset(archive, use_labels=True)


@pytest.mark.parametrize(
    "labels, reason",
    [
        ("{bad json", "not valid JSON"),
        ('{"labels": {"a": 1}}', "must be null or a list"),
        ('{"labels": [["00000/img00000000.png", 1.5]]}', "is not allowed"),
        ('{"labels": [["other.png", 1]]}', "no label for 00000/img00000000.png"),
    ],
)
def test_bad_dataset_json_is_refused(tmp_path, pixels, labels, reason):
    entries = {"00000/img00000000.png": encode(pixels[0]), "dataset.json": labels}
    with pytest.raises(UserError, match=reason):
        ImageDataset(_zip(tmp_path / "bad.zip", entries))


def test_max_images_takes_the_first_images_in_name_order(archive, pixels):
    ds = ImageDataset(archive, max_images=5, mirror=True)
    assert (ds.num_images, len(ds)) == (5, 10)
    assert torch.equal(ds[4][0], _chw(pixels[4]))
    assert torch.equal(ds[5][0], _chw(pixels[0][:, ::-1]))


def test_folder_input_is_recursive_and_sorted(tmp_path, pixels):
    root = tmp_path / "pictures"
    (root / "b").mkdir(parents=True)
    (root / "a.png").write_bytes(encode(pixels[0]))
    (root / "b" / "c.JPG").write_bytes(encode(pixels[1], "JPEG"))
    (root / "b" / "a.png").write_bytes(encode(pixels[2]))
    (root / "notes.txt").write_text("not a picture")
    (root / ".hidden.png").write_bytes(b"junk")
    ds = ImageDataset(root)
    assert ds.names == ("a.png", "b/a.png", "b/c.JPG")
    assert torch.equal(ds[1][0], _chw(pixels[2]))
    assert ds[2][0].shape == (3, SIDE, SIDE)  # JPEG: lossy, so only the shape is exact


def test_greyscale_images_have_one_channel(tmp_path):
    grey = np.arange(16 * 16, dtype=np.uint8).reshape(16, 16)
    (tmp_path / "g.png").write_bytes(encode(grey))
    ds = ImageDataset(tmp_path, mirror=True)
    assert ds.channels == 1
    assert torch.equal(ds[0][0], torch.from_numpy(grey)[None])
    assert torch.equal(ds[1][0], torch.from_numpy(grey[:, ::-1].copy())[None])


def test_resolution_mismatch_says_what_to_do(archive):
    with pytest.raises(UserError) as err:
        ImageDataset(archive, resolution=512)
    assert str(err.value) == (
        "dataset is 32 px but data.resolution = 512: re-run prepare with --size 512 and "
        "archive again, or set data.resolution = 32"
    )


@pytest.mark.parametrize(
    "shapes, bad",
    [([(32, 32, 3), (32, 16, 3)], "b.png"), ([(32, 32, 3), (64, 64, 3)], "b.png")],
)
def test_non_square_or_mixed_sizes_are_refused(tmp_path, shapes, bad):
    for name, shape in zip(["a.png", "b.png"], shapes, strict=True):
        (tmp_path / name).write_bytes(encode(np.zeros(shape, np.uint8)))
    with pytest.raises(UserError, match=bad) as err:
        ImageDataset(tmp_path)
    assert "\n" not in str(err.value)


def test_alpha_and_undecodable_pictures_are_refused(tmp_path, pixels):
    (tmp_path / "a.png").write_bytes(encode(np.zeros((32, 32, 4), np.uint8)))
    with pytest.raises(UserError, match=r"a\.png is RGBA"):
        ImageDataset(tmp_path)
    (tmp_path / "a.png").write_bytes(b"GIF89a not really")
    with pytest.raises(UserError, match=r"a\.png is not a PNG or JPEG"):
        ImageDataset(tmp_path)


@pytest.mark.parametrize("name", ["../x.png", "/abs/x.png", "a/../../x.png", "C:/x.png"])
def test_an_unsafe_entry_name_refuses_the_archive(tmp_path, pixels, name):
    path = _zip(tmp_path / "evil.zip", {"00000/img00000000.png": encode(pixels[0]), name: b""})
    with pytest.raises(UserError, match="unsafe entry name"):
        ImageDataset(path)
    assert not (tmp_path / "x.png").exists()


def test_missing_empty_or_non_zip_inputs_are_refused(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        ImageDataset(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no PNG or JPEG pictures"):
        ImageDataset(tmp_path / "empty")
    (tmp_path / "fake.zip").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="not a readable zip"):
        ImageDataset(tmp_path / "fake.zip")


def test_a_corrupt_picture_is_a_user_error_when_read(tmp_path, pixels):
    data = encode(pixels[0])
    entries = {"00000/img00000000.png": data[: len(data) // 2]}  # the header survives
    ds = ImageDataset(_zip(tmp_path / "cut.zip", entries))
    with pytest.raises(UserError, match=r"img00000000\.png cannot be read"):
        ds[0]


def test_fingerprint_is_stable_and_sees_every_change(tmp_path, pixels):
    path = _archive(tmp_path / "a", pixels, [0] * COUNT)
    same = _archive(tmp_path / "b", pixels, [0] * COUNT)
    base = ImageDataset(path).fingerprint()
    assert base == ImageDataset(path).fingerprint() == ImageDataset(same).fingerprint()
    changed = [p.copy() for p in pixels]
    changed[7][3, 3, 0] ^= 1
    others = {
        ImageDataset(_archive(tmp_path / "c", changed, [0] * COUNT)).fingerprint(),
        ImageDataset(path, mirror=True).fingerprint(),
        ImageDataset(path, max_images=5).fingerprint(),
        ImageDataset(path, use_labels=True).fingerprint(),
    }
    assert base not in others
    assert len(others) == 4
    # Labels count only when they are used.
    relabelled = _archive(tmp_path / "d", pixels, [0] * 11 + [1])
    assert ImageDataset(relabelled).fingerprint() == base
    assert ImageDataset(relabelled, use_labels=True).fingerprint() not in others


def test_folder_fingerprint_hashes_the_bytes(tmp_path, pixels):
    (tmp_path / "a.png").write_bytes(encode(pixels[0]))
    (tmp_path / "b.png").write_bytes(encode(pixels[1]))
    base = ImageDataset(tmp_path).fingerprint()
    assert ImageDataset(tmp_path).fingerprint() == base
    (tmp_path / "b.png").write_bytes(encode(pixels[2]))
    assert ImageDataset(tmp_path).fingerprint() != base


@pytest.mark.parametrize("context", ["fork", pytest.param("spawn", marks=pytest.mark.slow)])
def test_dataloader_with_worker_processes(archive, pixels, context):
    ds = ImageDataset(archive, mirror=True)
    ds[0]  # the main process opens the zip first: workers must not share that handle
    assert pickle.loads(pickle.dumps(ds))._zip is None  # workers open their own zip
    loader = DataLoader(ds, batch_size=5, num_workers=2, multiprocessing_context=context)
    images = torch.cat([batch[0] for batch in loader])
    expected = torch.stack([_chw(p) for p in pixels])
    assert torch.equal(images, torch.cat([expected, expected.flip(-1)]))
