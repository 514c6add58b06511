import errno
import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from helpers.images import encode, random_pixels
from heroforge.commands import app
from heroforge.data import archive
from heroforge.data.archive import ArchiveSummary, archive_name, read_labels_file, write_archive
from heroforge.errors import OperationalError, UserError

COUNT = 12
SIDE = 32


@pytest.fixture
def prepared(tmp_path) -> Path:
    """A prepared folder: 12 random 32 px RGB pictures in images/."""
    (tmp_path / "prep" / "images").mkdir(parents=True)
    for i, pixels in enumerate(random_pixels(COUNT, SIDE, SIDE)):
        (tmp_path / "prep" / "images" / f"hero_{i:03d}.png").write_bytes(encode(pixels))
    return tmp_path / "prep"


def _pictures(prepared: Path) -> list[Path]:
    return sorted((prepared / "images").iterdir())


def test_layout_is_the_official_one_and_pngs_are_stored_byte_for_byte(prepared, tmp_path):
    out = tmp_path / "set.zip"
    summary = write_archive(prepared, out)
    assert summary == ArchiveSummary(
        images=COUNT, resolution=SIDE, channels=3, path=out, bytes=out.stat().st_size
    )
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        assert names[:COUNT] == [f"00000/img{i:08d}.png" for i in range(COUNT)]
        assert names[COUNT:] == ["dataset.json", "heroforge.json"]
        assert json.loads(zf.read("dataset.json")) == {"labels": None}
        for name, src in zip(names, _pictures(prepared), strict=False):
            assert zf.read(name) == src.read_bytes()
            assert zf.getinfo(name).compress_type == zipfile.ZIP_STORED
        assert zf.testzip() is None


def test_entry_names_use_one_folder_per_thousand():
    assert archive_name(0) == "00000/img00000000.png"
    assert archive_name(999) == "00000/img00000999.png"
    assert archive_name(1000) == "00001/img00001000.png"
    assert archive_name(123456) == "00123/img00123456.png"


def test_provenance_records_source_and_hashes(prepared, tmp_path):
    write_archive(prepared, tmp_path / "set.zip")
    with zipfile.ZipFile(tmp_path / "set.zip") as zf:
        meta = json.loads(zf.read("heroforge.json"))
    assert meta["source"] == "prep"
    assert (meta["count"], meta["resolution"], meta["channels"]) == (COUNT, SIDE, 3)
    assert meta["created"].endswith("+00:00")
    for record, src in zip(meta["images"], _pictures(prepared), strict=True):
        assert record["source"] == src.name
        assert record["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()


def test_labels_are_written_in_picture_order(prepared, tmp_path):
    labels = {p.name: i % 3 for i, p in enumerate(_pictures(prepared))}
    labels["left-out-by-prepare.png"] = 7  # extra names are allowed
    write_archive(prepared, tmp_path / "set.zip", labels)
    with zipfile.ZipFile(tmp_path / "set.zip") as zf:
        written = json.loads(zf.read("dataset.json"))["labels"]
    assert written == [[archive_name(i), i % 3] for i in range(COUNT)]


@pytest.mark.parametrize("bad", [None, -1, 1.5, True, "2"])
def test_a_missing_or_bad_label_is_refused(prepared, tmp_path, bad):
    labels = {p.name: 0 for p in _pictures(prepared)}
    if bad is None:
        del labels["hero_004.png"]
    else:
        labels["hero_004.png"] = bad
    with pytest.raises(UserError, match=r"hero_004\.png"):
        write_archive(prepared, tmp_path / "set.zip", labels)


def test_greyscale_pictures_make_a_one_channel_archive(tmp_path):
    (tmp_path / "images").mkdir()
    for i in range(3):
        (tmp_path / "images" / f"{i}.png").write_bytes(encode(np.full((16, 16), 40 * i, np.uint8)))
    assert write_archive(tmp_path, tmp_path / "grey.zip").channels == 1


def _break(images: Path, case: str) -> str:
    """Spoil the prepared folder in one way; returns the name the error must give."""
    rng = np.random.default_rng(1)
    if case == "non-square":
        (images / "hero_005.png").write_bytes(encode(rng.integers(0, 256, (32, 16, 3), np.uint8)))
    elif case == "mixed-size":
        (images / "hero_005.png").write_bytes(encode(rng.integers(0, 256, (64, 64, 3), np.uint8)))
    elif case == "not-power-of-two":
        for p in images.iterdir():
            p.write_bytes(encode(rng.integers(0, 256, (24, 24, 3), np.uint8)))
        return "hero_000.png"
    elif case == "rgba":
        (images / "hero_005.png").write_bytes(encode(rng.integers(0, 256, (32, 32, 4), np.uint8)))
    elif case == "mixed-mode":
        (images / "hero_005.png").write_bytes(encode(rng.integers(0, 256, (32, 32), np.uint8)))
    elif case == "jpeg-named-png":
        (images / "hero_005.png").write_bytes(
            encode(rng.integers(0, 256, (32, 32, 3), np.uint8), "JPEG")
        )
    elif case == "jpeg-file":
        (images / "hero_005.jpg").write_bytes(
            encode(rng.integers(0, 256, (32, 32, 3), np.uint8), "JPEG")
        )
    elif case == "truncated":
        data = (images / "hero_005.png").read_bytes()
        (images / "hero_005.png").write_bytes(data[: len(data) // 2])
    elif case == "folder":
        (images / "hero_005.png").unlink()
        (images / "hero_005.png").mkdir()
    return "hero_005"


CASES = [
    "non-square",
    "mixed-size",
    "not-power-of-two",
    "rgba",
    "mixed-mode",
    "jpeg-named-png",
    "jpeg-file",
    "truncated",
    "folder",
]


@pytest.mark.parametrize("case", CASES)
def test_a_bad_picture_is_refused_in_one_line_naming_it(prepared, tmp_path, case):
    name = _break(prepared / "images", case)
    out = tmp_path / "set.zip"
    with pytest.raises(UserError) as err:
        write_archive(prepared, out)
    assert name in str(err.value)
    assert "\n" not in str(err.value)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["prep"]  # no temp file left


def test_no_pictures_or_no_folder_is_refused(tmp_path):
    with pytest.raises(UserError, match="images is not a folder"):
        write_archive(tmp_path, tmp_path / "set.zip")
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / ".DS_Store").write_bytes(b"junk")  # dot files are skipped
    with pytest.raises(UserError, match="no pictures"):
        write_archive(tmp_path, tmp_path / "set.zip")


def test_the_archive_name_must_end_in_zip(prepared, tmp_path):
    with pytest.raises(UserError, match=r"\.zip"):
        write_archive(prepared, tmp_path / "set.tar")


def _fail_after(monkeypatch, entries: int) -> None:
    real = archive._copy_entry
    calls = []

    def copy(*args, **kwargs):
        if len(calls) == entries:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the zip
        calls.append(args)
        real(*args, **kwargs)

    monkeypatch.setattr(archive, "_copy_entry", copy)


def test_a_failure_midway_leaves_no_partial_archive(prepared, tmp_path, monkeypatch):
    _fail_after(monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt):
        write_archive(prepared, tmp_path / "set.zip")
    assert [p.name for p in tmp_path.iterdir()] == ["prep"]


def test_a_failure_midway_keeps_the_previous_archive(prepared, tmp_path, monkeypatch):
    out = tmp_path / "set.zip"
    write_archive(prepared, out)
    before = out.read_bytes()
    (prepared / "images" / "hero_000.png").write_bytes(encode(np.zeros((SIDE, SIDE, 3), np.uint8)))
    _fail_after(monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt):
        write_archive(prepared, out)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prep", "set.zip"]


def test_a_full_disk_is_an_operational_failure_that_keeps_the_previous_archive(
    prepared, tmp_path, monkeypatch
):
    out = tmp_path / "set.zip"
    write_archive(prepared, out)
    before = out.read_bytes()

    def no_space(*_args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("heroforge.fileio.os.replace", no_space)
    with pytest.raises(OperationalError) as err:
        write_archive(prepared, out)
    assert str(err.value) == f"cannot write {out}: No space left on device"
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prep", "set.zip"]  # no temp file


def test_a_picture_changed_after_verification_is_refused(prepared, tmp_path, monkeypatch):
    real = archive._verify

    def verify_then_change(*args, **kwargs):
        result = real(*args, **kwargs)
        (prepared / "images" / "hero_003.png").write_bytes(
            encode(np.zeros((SIDE, SIDE, 3), np.uint8))
        )
        return result

    monkeypatch.setattr(archive, "_verify", verify_then_change)
    with pytest.raises(UserError, match=r"hero_003\.png changed"):
        write_archive(prepared, tmp_path / "set.zip")
    assert not (tmp_path / "set.zip").exists()


def test_read_labels_file(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text('{"a.png": 0, "b.png": 2}')
    assert read_labels_file(path) == {"a.png": 0, "b.png": 2}
    for text, reason in [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must hold an object"),
        ('{"a.png": "x"}', "a.png"),
    ]:
        path.write_text(text)
        with pytest.raises(UserError, match=reason):
            read_labels_file(path)
    with pytest.raises(UserError, match="cannot read"):
        read_labels_file(tmp_path / "missing.json")


def test_cli_command_writes_the_archive_and_a_summary(prepared, tmp_path):
    labels = tmp_path / "classes.json"
    labels.write_text(json.dumps({p.name: 1 for p in _pictures(prepared)}))
    out = tmp_path / "set.zip"
    result = CliRunner().invoke(
        app, ["archive", str(prepared), "--out", str(out), "--labels", str(labels)]
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {COUNT} pictures ({SIDE} px, 3 channels, labelled)" in result.output
    with zipfile.ZipFile(out) as zf:
        assert json.loads(zf.read("dataset.json"))["labels"][0] == [archive_name(0), 1]
    help_text = CliRunner().invoke(app, ["archive", "--help"]).output
    assert "heroforge archive prepared --out heroes.zip" in help_text


def test_cli_command_passes_user_errors_on(tmp_path):
    result = CliRunner().invoke(app, ["archive", str(tmp_path), "--out", "x.zip"])
    assert isinstance(result.exception, UserError)
