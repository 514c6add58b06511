"""Safe ingest: a corpus of bad and odd files built here, listed and decoded without a crash."""

from __future__ import annotations

import io
import json
import os
import pickle
import stat
import struct
import sys
import zipfile
import zlib
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from helpers.images import encode, random_pixels
from heroforge.data.ingest import (
    IngestLimits,
    Skip,
    Source,
    decode_image,
    list_sources,
)
from heroforge.data.ingest_checks import SKIP_CODES
from heroforge.data.synth import synthesize
from heroforge.errors import UserError

# ------------------------------------------------------------------- watching for any write

# Every file-system change Python makes raises one of these audit events (or "open" with a
# write mode). The hook lives for the whole session, so it only records while a test watches.
WRITE_EVENTS = {
    "os.chmod",
    "os.chown",
    "os.link",
    "os.mkdir",
    "os.remove",
    "os.rename",
    "os.rmdir",
    "os.symlink",
    "os.truncate",
    "os.utime",
    "shutil.copyfile",
    "shutil.move",
    "shutil.rmtree",
}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_writes: list[tuple] | None = None


def _audit(event: str, args: tuple) -> None:
    if _writes is None:
        return
    if event == "open":
        path, mode, flags = args
        by_mode = isinstance(mode, str) and any(c in mode for c in "wxa+")
        by_flags = isinstance(flags, int) and flags >= 0 and flags & WRITE_FLAGS
        if by_mode or by_flags:
            _writes.append((event, path, mode))
    elif event in WRITE_EVENTS:
        _writes.append((event, *args))


sys.addaudithook(_audit)


@contextmanager
def nothing_written():
    """Fails if anything is written anywhere inside the block."""
    global _writes
    _writes = []
    try:
        yield
    finally:
        seen, _writes = _writes, None
    assert seen == []


# ------------------------------------------------------------------------------- builders


def _picture(w: int = 40, h: int = 30, seed: int = 0) -> Image.Image:
    return Image.fromarray(random_pixels(1, h, w, seed)[0])


def _png_claiming(w: int, h: int) -> bytes:
    """A valid 16x16 PNG whose IHDR claims w x h (CRC fixed): a decompression-bomb header."""
    data = bytearray(encode(Image.new("L", (16, 16)), "PNG"))
    data[16:24] = struct.pack(">II", w, h)  # after the signature, IHDR length and type
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def _rgba(alpha: int | None) -> Image.Image:
    img = _picture().convert("RGBA")
    a = np.full((30, 40), 255, np.uint8)
    if alpha is not None:
        a[:10] = alpha
    img.putalpha(Image.fromarray(a))
    return img


def _animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (32, 32), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100)


def _snapshot(folder: Path) -> dict[str, tuple]:
    """Names, mtimes and contents of everything under folder, links and fifos not followed."""
    state = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        if stat.S_ISREG(info.st_mode):
            content = path.read_bytes()
        elif stat.S_ISLNK(info.st_mode):
            content = os.readlink(path)
        else:
            content = stat.S_IFMT(info.st_mode)
        state[str(path)] = (info.st_mtime_ns, content)
    return state


LIMITS = IngestLimits(max_file_bytes=200_000)

# Files that are listed and decode.
GOOD = {
    "good.png": encode(_picture(), "PNG"),
    "sub/deeper/good.jpg": encode(_picture(), "JPEG"),
    "photo.png/inside.png": encode(_picture(), "PNG"),
    "rgba.png": encode(_rgba(0), "PNG"),
    "palette.png": encode(_picture().quantize(8), "PNG", transparency=0),
    "cmyk.jpg": encode(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG"),
    "grey16.png": encode(Image.fromarray(np.full((20, 20), 40000, np.uint16)), "PNG"),
    "grey16.tif": encode(Image.fromarray(np.full((20, 20), 40000, np.uint16)), "TIFF"),
    "anim.gif": _animated("GIF"),
    "jpeg_named.png": encode(_picture(), "JPEG"),
    "picture.BMP": encode(_picture(), "BMP"),
    "rgba_lzw.tif": encode(_rgba(0), "TIFF", compression="tiff_lzw"),  # libtiff's decoder
}
# Files that are listed, then refused by decode_image: name -> (skip code, bytes).
BAD_AT_DECODE = {
    "truncated.jpg": ("truncated", encode(_picture(200, 200), "JPEG")[:3000]),
    "truncated.png": ("truncated", encode(_picture(200, 200), "PNG")[:20000]),
    "text.png": ("not_an_image", b"hello, I am not a picture\n" * 10),
    "eps.png": ("not_an_image", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"),
    "bomb.png": ("decompression_bomb", _png_claiming(50_000, 50_000)),
    "tiny.png": ("too_small", encode(Image.new("RGB", (1, 1)), "PNG")),
    "absurd.png": ("too_large", _png_claiming(30_000, 20)),
}
# Entries refused by list_sources: name as printed in the skipped list -> skip code.
BAD_AT_LISTING = {
    "empty.png": "empty",
    "notes.txt": "unsupported_extension",
    "README": "unsupported_extension",
    ".DS_Store": "unsupported_extension",
    ".hidden": "directory",
    "photo.png": "directory",
    "link.png": "symlink",
    "linkdir": "symlink",
    "big.bmp": "too_large",
    "fifo.png": "unreadable",
    "new\\nline.png": "unsafe_path",
    "bad\\udcff.png": "unsafe_path",
}


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _build_corpus(folder: Path) -> None:
    for name, data in GOOD.items():
        _write(folder / name, data)
    for name, (_, data) in BAD_AT_DECODE.items():
        _write(folder / name, data)
    _write(folder / "empty.png", b"")
    _write(folder / "notes.txt", b"not a picture")
    _write(folder / "README", b"not a picture")
    _write(folder / ".DS_Store", b"\0\0\0\1Bud1")
    _write(folder / ".hidden" / "secret.png", GOOD["good.png"])
    _write(folder / "big.bmp", encode(_picture(300, 300), "BMP"))  # > LIMITS.max_file_bytes
    _write(folder / "new\nline.png", GOOD["good.png"])
    with open(os.path.join(os.fsencode(folder), b"bad\xff.png"), "wb") as f:
        f.write(GOOD["good.png"])
    os.symlink(folder / "good.png", folder / "link.png")
    os.symlink(folder / "sub", folder / "linkdir")
    os.mkfifo(folder / "fifo.png")


# ---------------------------------------------------------------------------------- folder


def _decode_all(sources: list[Source], limits: IngestLimits) -> dict[str, object]:
    """name -> Decoded or Skip, for every source."""
    outcomes: dict[str, object] = {}
    for source in sources:
        try:
            outcomes[source.name] = decode_image(source.read_bytes(limits), source.name, limits)
        except Skip as skip:
            outcomes[source.name] = skip
    return outcomes


def _assert_one_line(skip: Skip) -> None:
    assert skip.code in SKIP_CODES
    assert str(skip)
    assert "\n" not in str(skip)
    assert len(str(skip)) <= 300


def test_folder_corpus_every_bad_file_skipped_with_its_code(tmp_path):
    folder = tmp_path / "raw"
    _build_corpus(folder)
    before = _snapshot(folder)

    with nothing_written():
        sources, skipped = list_sources(folder, LIMITS)
        outcomes = _decode_all(sources, LIMITS)

    assert {name: skip.code for name, skip in skipped} == BAD_AT_LISTING
    assert [s.name for s in sources] == sorted(GOOD.keys() | BAD_AT_DECODE.keys())
    assert all(s.container == str(folder.resolve()) and not s.is_zip for s in sources)
    assert {n: o.code for n, o in outcomes.items() if isinstance(o, Skip)} == {
        n: code for n, (code, _) in BAD_AT_DECODE.items()
    }
    for _, skip in skipped:
        _assert_one_line(skip)
    for outcome in outcomes.values():
        if isinstance(outcome, Skip):
            _assert_one_line(outcome)
    assert _snapshot(folder) == before


def test_folder_corpus_good_files_decode_to_rgb_and_alpha(tmp_path):
    _build_corpus(tmp_path)
    sources, _ = list_sources(tmp_path, LIMITS)
    decoded = {n: d for n, d in _decode_all(sources, LIMITS).items() if n in GOOD}
    for d in decoded.values():
        assert d.rgb.dtype == np.uint8
        assert d.rgb.ndim == 3
        assert d.rgb.shape[2] == 3
        assert d.rgb.shape[:2] == d.original_size[::-1]
    assert decoded["rgba.png"].alpha is not None
    assert decoded["palette.png"].alpha is not None
    assert "palette->rgba" in decoded["palette.png"].notes
    assert decoded["good.png"].alpha is None
    assert decoded["good.png"].notes == []
    assert decoded["cmyk.jpg"].original_mode == "CMYK"
    assert np.abs(decoded["cmyk.jpg"].rgb[5, 5].astype(int) - [255, 0, 0]).max() <= 3
    for name in ("grey16.png", "grey16.tif"):
        assert decoded[name].original_mode.startswith("I;16")
        assert (decoded[name].rgb == round(40000 / 257)).all()
    assert decoded["anim.gif"].notes == ["palette->rgb", "animated: first of 3 frames"]
    assert decoded["jpeg_named.png"].format == "JPEG"
    assert "named .png, holds JPEG" in decoded["jpeg_named.png"].notes
    assert decoded["picture.BMP"].format == "BMP"


def test_path_that_is_neither_folder_nor_zip_is_a_user_error(tmp_path):
    (tmp_path / "one.png").write_bytes(GOOD["good.png"])
    (tmp_path / "fake.zip").write_bytes(b"not a zip at all")
    for path, message in [
        (tmp_path / "missing", "does not exist"),
        (tmp_path / "one.png", "neither a folder nor a .zip file"),
        (tmp_path / "fake.zip", "not a readable zip file"),
    ]:
        with pytest.raises(UserError, match=message) as info:
            list_sources(path)
        assert "\n" not in str(info.value)


# -------------------------------------------------------------------------------------- zip


def _zip_entry(name: str, unix_mode: int = stat.S_IFREG | 0o644) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = unix_mode << 16
    info.create_system = 3  # unix: external_attr holds st_mode
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


ZIP_GOOD = {
    "a/good.png": GOOD["good.png"],
    "good.jpg": GOOD["sub/deeper/good.jpg"],
    "perms_only.png": GOOD["rgba.png"],
    "dos.png": GOOD["palette.png"],
}
ZIP_BAD = {
    "../evil.png": "unsafe_path",
    "/etc/x.png": "unsafe_path",
    "C:/windows.png": "unsafe_path",
    "dir\\back.png": "unsafe_path",
    "a/./dot.png": "unsafe_path",
    "bomb.bmp": "too_large",
    "link.png": "symlink",
    "photo.png/": "directory",
    "__MACOSX/a/._good.png": "unsupported_extension",
    "notes.txt": "unsupported_extension",
    "empty.png": "empty",
    "twice.png": "unsafe_path",
}


def _build_zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(_zip_entry("a/good.png"), ZIP_GOOD["a/good.png"])
        archive.writestr(_zip_entry("good.jpg"), ZIP_GOOD["good.jpg"])
        archive.writestr("perms_only.png", ZIP_GOOD["perms_only.png"])  # mode 0o600, no type
        dos = zipfile.ZipInfo("dos.png")
        dos.create_system, dos.external_attr = 0, 0x20  # made on Windows: no unix mode at all
        archive.writestr(dos, ZIP_GOOD["dos.png"])
        archive.writestr(_zip_entry("a/"), b"")  # a plain folder entry: silently passed over
        for name in ("../evil.png", "/etc/x.png", "C:/windows.png", "dir\\back.png"):
            archive.writestr(_zip_entry(name), GOOD["good.png"])
        archive.writestr(_zip_entry("a/./dot.png"), GOOD["good.png"])
        archive.writestr(_zip_entry("bomb.bmp"), bytes(5_000_000))  # inflates ~1000:1
        archive.writestr(_zip_entry("link.png", stat.S_IFLNK | 0o777), b"/etc/passwd")
        archive.writestr(_zip_entry("photo.png/", stat.S_IFDIR | 0o755), b"")
        archive.writestr(_zip_entry("__MACOSX/a/._good.png"), b"\0\5\26\7resource fork")
        archive.writestr(_zip_entry("notes.txt"), b"hello")
        archive.writestr(_zip_entry("empty.png"), b"")
        with pytest.warns(UserWarning, match="Duplicate name"):
            archive.writestr(_zip_entry("twice.png"), GOOD["good.png"])
            archive.writestr(_zip_entry("twice.png"), GOOD["rgba.png"])


def test_zip_corpus_hostile_entries_skipped_good_ones_decode(tmp_path):
    _build_zip(tmp_path / "raw.zip")
    with zipfile.ZipFile(tmp_path / "raw.zip") as archive:
        names = archive.namelist()
    assert "../evil.png" in names
    assert "/etc/x.png" in names  # zipfile kept the hostile names
    before = _snapshot(tmp_path)

    with nothing_written():
        sources, skipped = list_sources(tmp_path / "raw.zip")
        outcomes = _decode_all(sources, IngestLimits())

    assert {name: skip.code for name, skip in skipped} == ZIP_BAD
    assert [s.name for s in sources] == sorted(ZIP_GOOD)
    assert all(s.is_zip and s.container == str((tmp_path / "raw.zip").resolve()) for s in sources)
    assert all(not isinstance(o, Skip) for o in outcomes.values())
    for _, skip in skipped:
        _assert_one_line(skip)
    assert "zip bomb" in str(dict(skipped)["bomb.bmp"])
    assert _snapshot(tmp_path) == before


def _patch_central(data: bytes, name: bytes, offset: int, fmt: str, value: int) -> bytes:
    """Rewrite one field of an entry's central-directory header (what zipfile trusts)."""
    at = data.index(b"PK\x01\x02")  # the first central-directory header
    while data[at + 46 : at + 46 + len(name)] != name:
        at = data.index(b"PK\x01\x02", at + 4)
    patched = bytearray(data)
    struct.pack_into(fmt, patched, at + offset, value)
    return bytes(patched)


def test_zip_entry_whose_header_lies_is_refused_when_read(tmp_path):
    png = GOOD["good.png"]
    with zipfile.ZipFile(tmp_path / "lie.zip", "w") as archive:
        archive.writestr(_zip_entry("liar.png"), png)
        archive.writestr(_zip_entry("locked.png"), png)
    data = (tmp_path / "lie.zip").read_bytes()
    data = _patch_central(data, b"liar.png", 24, "<I", len(png) // 2)  # uncompressed size
    data = _patch_central(data, b"locked.png", 8, "<H", 0x1)  # the "encrypted" flag
    (tmp_path / "lie.zip").write_bytes(data)

    sources, skipped = list_sources(tmp_path / "lie.zip")
    assert [(n, s.code) for n, s in skipped] == [("locked.png", "unreadable")]
    with pytest.raises(Skip) as info:
        sources[0].read_bytes(IngestLimits())
    assert info.value.code == "unreadable"
    assert "CRC" in str(info.value)


def test_zip_with_too_many_entries_is_a_user_error(tmp_path):
    with zipfile.ZipFile(tmp_path / "many.zip", "w") as archive:
        for i in range(5):
            archive.writestr(f"{i}.png", GOOD["good.png"])
    with pytest.raises(UserError, match="5 entries"):
        list_sources(tmp_path / "many.zip", IngestLimits(max_zip_entries=4))


def test_sources_and_skips_survive_worker_processes(tmp_path):
    _build_zip(tmp_path / "raw.zip")
    (tmp_path / "folder").mkdir()
    _write(tmp_path / "folder" / "text.png", b"plain text")
    sources = list_sources(tmp_path / "raw.zip")[0] + list_sources(tmp_path / "folder")[0]
    assert pickle.loads(pickle.dumps(sources)) == sources
    with ProcessPoolExecutor(1) as pool:
        outcomes = list(pool.map(_decode_in_worker, sources))
    assert [type(o).__name__ for o in outcomes] == ["tuple"] * 4 + ["Skip"]
    assert outcomes[0] == (30, 40, 3)
    assert outcomes[-1].code == "not_an_image"


def _decode_in_worker(source: Source) -> tuple[int, ...] | Skip:
    try:
        return decode_image(source.read_bytes(IngestLimits()), source.name).rgb.shape
    except Skip as skip:
        return skip


# --------------------------------------------------------------------------------- decoding


def test_sixteen_bit_greyscale_is_scaled_not_clipped():
    values = np.array([[65535, 32768, 0, 257]], np.uint16).repeat(16, 0).repeat(4, 1)
    decoded = decode_image(encode(Image.fromarray(values), "PNG"), "deep.png")
    row = decoded.rgb[0, ::4]
    assert row[:, 0].tolist() == [255, 128, 0, 1]
    assert (decoded.rgb == decoded.rgb[:, :, :1]).all()  # grey in all three channels
    assert decoded.notes == ["16-bit->8-bit", "greyscale->rgb"]


def test_float_tiff_is_scaled_to_8_bits():
    values = np.linspace(0, 1, 16 * 16, dtype=np.float32).reshape(16, 16)
    decoded = decode_image(encode(Image.fromarray(values), "TIFF"), "float.tif")
    assert decoded.original_mode == "F"
    assert decoded.rgb[0, 0, 0] == 0
    assert decoded.rgb[-1, -1, 0] == 255


def test_alpha_kept_when_meaningful_dropped_when_opaque():
    kept = decode_image(encode(_rgba(0), "PNG"), "a.png")
    assert kept.alpha is not None
    assert kept.alpha[:10].max() == 0
    assert kept.alpha[10:].min() == 255
    opaque = decode_image(encode(_rgba(None), "PNG"), "b.png")
    assert opaque.alpha is None
    assert opaque.notes == ["alpha dropped: opaque"]
    grey = decode_image(encode(_rgba(128).convert("LA"), "PNG"), "c.png")
    assert grey.original_mode == "LA"
    assert grey.alpha[0, 0] == 128
    assert grey.notes == ["greyscale->rgb"]


def test_palette_with_transparency_becomes_rgb_plus_alpha():
    img = Image.new("P", (20, 20), 1)
    img.putpalette([0, 0, 0, 255, 0, 0])
    img.paste(0, (0, 0, 10, 20))
    decoded = decode_image(encode(img, "PNG", transparency=0), "p.png")
    assert decoded.original_mode == "P"
    assert decoded.notes == ["palette->rgba"]
    assert decoded.alpha[:, :10].max() == 0
    assert decoded.alpha[:, 10:].min() == 255
    assert decoded.rgb[0, 15].tolist() == [255, 0, 0]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_applied_like_pillow(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    img = _picture(40, 20)
    decoded = decode_image(encode(img, "PNG", exif=exif), "o.png")
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(encode(img, "PNG", exif=exif))))
    assert np.array_equal(decoded.rgb, np.asarray(upright))
    assert decoded.original_size == (40, 20)
    assert ("exif-rotated" in decoded.notes) == (orientation != 1)


def test_exif_rotated_jpeg_swaps_its_size():
    exif = Image.Exif()
    exif[0x0112] = 6
    decoded = decode_image(encode(_picture(40, 20), "JPEG", exif=exif), "r.jpg")
    assert decoded.rgb.shape == (40, 20, 3)
    assert decoded.original_size == (40, 20)
    assert decoded.full_size == (20, 40)
    assert decoded.scale == 1.0


def _smooth_picture(w: int, h: int) -> Image.Image:
    """Gradients: a JPEG of them decoded at a reduced scale matches the shrunk full decode."""
    y, x = np.mgrid[0:h, 0:w]
    pixels = np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (w + h)], 2)
    return Image.fromarray(pixels.astype(np.uint8))


def test_big_jpeg_decoded_reduced_with_its_full_size_kept():
    exif = Image.Exif()
    exif[0x0112] = 6  # turned by 90 degrees when shown
    data = encode(_smooth_picture(1700, 1000), "JPEG", quality=95, exif=exif)
    full = decode_image(data, "big.jpg")
    half = decode_image(data, "big.jpg", shrink_to=768)
    # the longer side 1700 >= 2 x 768: halved (a quarter would be 425 < 768)
    assert half.rgb.shape == (850, 500, 3)
    assert half.scale == 0.5
    assert half.full_size == full.full_size == (1000, 1700)
    assert half.original_size == (1700, 1000)
    shrunk = np.asarray(Image.fromarray(full.rgb).resize((500, 850), Image.Resampling.BOX))
    assert np.abs(shrunk.astype(int) - half.rgb).mean() < 2.0


@pytest.mark.parametrize(("size", "fmt"), [((1400, 900), "JPEG"), ((1700, 1000), "PNG")])
def test_shrink_to_leaves_small_jpegs_and_other_formats_whole(size, fmt):
    decoded = decode_image(encode(_smooth_picture(*size), fmt), "p", shrink_to=768)
    assert decoded.rgb.shape[1::-1] == size
    assert decoded.scale == 1.0


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animations_give_their_first_frame(fmt):
    decoded = decode_image(_animated(fmt), f"anim.{fmt.lower()}")
    assert "animated: first of 3 frames" in decoded.notes
    assert np.abs(decoded.rgb[16, 16].astype(int) - [255, 0, 0]).max() <= 8


def test_phone_multi_picture_jpeg_gives_its_main_picture():
    buf = io.BytesIO()
    _picture().save(buf, "MPO", save_all=True, append_images=[_picture(seed=1)])
    decoded = decode_image(buf.getvalue(), "phone.jpg")
    assert decoded.format == "JPEG"
    assert decoded.notes == ["multi-picture: first of 2 pictures"]


@pytest.mark.parametrize(
    ("size", "code"),
    [
        ((50_000, 50_000), "decompression_bomb"),  # past Pillow's own error threshold
        ((10_000, 10_000), "decompression_bomb"),  # past Pillow's warning threshold only
        ((9_000, 8_000), "decompression_bomb"),  # past max_pixels only
        ((30_000, 20), "too_large"),
        ((16, 15), "too_small"),
    ],
)
def test_header_sizes_refused_before_decoding(size, code):
    with pytest.raises(Skip) as info:
        decode_image(_png_claiming(*size), "h.png")
    assert info.value.code == code
    _assert_one_line(info.value)


def test_limits_are_honoured():
    png = encode(_picture(100, 100), "PNG")
    for limits, code in [
        (IngestLimits(max_pixels=9_999), "decompression_bomb"),
        (IngestLimits(max_side=99), "too_large"),
        (IngestLimits(min_side=101), "too_small"),
        (IngestLimits(max_file_bytes=len(png) - 1), "too_large"),
    ]:
        with pytest.raises(Skip) as info:
            decode_image(png, "x.png", limits)
        assert info.value.code == code
    with pytest.raises(Skip, match="empty"):
        decode_image(b"", "x.png")


def test_corrupted_bytes_never_raise_anything_but_skip():
    """Overwrite and cut bytes of every format: each result is a picture or a Skip."""
    rng = np.random.default_rng(0)
    originals = [
        encode(_picture(48, 32), fmt) for fmt in ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
    ] + [_animated("GIF"), _animated("PNG")]
    codes = set()
    for original in originals:
        for _ in range(100):
            data = np.frombuffer(original, np.uint8).copy()
            at = rng.integers(0, len(data), size=rng.integers(1, 6))
            data[at] = rng.integers(0, 256, size=len(at))
            if rng.random() < 0.3:
                data = data[: rng.integers(1, len(data))]
            try:
                decoded = decode_image(bytes(data), "fuzz.png")
                assert decoded.rgb.dtype == np.uint8
                assert decoded.rgb.shape[2] == 3
            except Skip as skip:
                _assert_one_line(skip)
                codes.add(skip.code)
    assert len(codes) >= 2


def test_skip_is_one_line_and_checks_its_code():
    skip = Skip("truncated", "image file is truncated\n(14 bytes\tnot processed)")
    assert str(skip) == "image file is truncated (14 bytes not processed)"
    assert pickle.loads(pickle.dumps(skip)).code == "truncated"
    with pytest.raises(ValueError, match="unknown skip code"):
        Skip("bad_code", "reason")


def test_every_synthetic_picture_decodes(tmp_path):
    synthesize(tmp_path / "set", 30, seed=1, workers=1)
    labels = json.loads((tmp_path / "set" / "labels.json").read_text())["images"]
    sources, skipped = list_sources(tmp_path / "set" / "raw")
    assert skipped == []
    assert len(sources) == 30
    decoded = _decode_all(sources, IngestLimits())
    assert any(label["format"] == "png-rgba" for label in labels)
    for label in labels:
        d = decoded[label["file"]]
        assert not isinstance(d, Skip), (label["file"], d)
        assert d.rgb.shape == (label["size"][1], label["size"][0], 3)
        assert (d.alpha is not None) == (label["format"] == "png-rgba")
