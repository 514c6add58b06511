from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import heroforge.data.prepare as prep
from helpers.files import copy_synth_pictures, read_manifest
from heroforge.config import load_config
from heroforge.data.inspect import Scores
from heroforge.data.overrides import read_overrides, set_override
from heroforge.data.prepare_decide import decide
from heroforge.errors import UserError

CFG = load_config("superheroes-512", ["prepare.size=64", "prepare.keep=both"]).prepare


@pytest.fixture(scope="module")
def raw_set(tmp_path_factory, synth_set) -> Path:
    """The first 40 synthetic pictures plus a few broken files."""
    folder, labels = synth_set
    raw = copy_synth_pictures(synth_set, tmp_path_factory.mktemp("raw"), 40)
    (raw / "empty.png").write_bytes(b"")
    (raw / "notes.png").write_text("not a picture at all")
    (raw / "cut.jpg").write_bytes((folder / "raw" / labels[1]["file"]).read_bytes()[:200])
    return raw


@pytest.fixture(scope="module")
def prepared(raw_set, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prepared")
    prep.prepare(raw_set, out, CFG, workers=2)
    return out


def test_manifest_has_a_decision_for_every_input(raw_set, prepared):
    rows = read_manifest(prepared)
    assert sorted(r["source"] for r in rows) == sorted(p.name for p in raw_set.iterdir())
    by_name = {r["source"]: r for r in rows}
    assert by_name["empty.png"]["decision"] == "error"
    assert by_name["empty.png"]["reason"] == "empty"
    assert by_name["notes.png"]["reason"] == "not_an_image"
    assert by_name["cut.jpg"]["decision"] == "error"
    for row in rows:
        assert row["decision"] in ("keep", "exclude", "error")
        assert (row["decision"] == "keep") == (row.get("reason") is None)


def test_the_summary_counts_what_the_manifest_says(raw_set, prepared):
    summary = prep.prepare(raw_set, prepared, CFG, workers=1)  # cached: quick, same decisions
    rows = read_manifest(prepared)
    assert summary.inputs == len(rows)
    assert summary.kept == sum(r["decision"] == "keep" for r in rows)
    assert summary.excluded == Counter(r["reason"] for r in rows if r["decision"] == "exclude")
    assert summary.errors == Counter(r["reason"] for r in rows if r["decision"] == "error")
    assert summary.unknown_overrides == []


def test_kept_pictures_are_square_pngs_on_white(prepared):
    kept = [r for r in read_manifest(prepared) if r["decision"] == "keep"]
    assert len(kept) >= 8
    assert sorted(p.name for p in (prepared / "images").iterdir()) == sorted(
        Path(r["output"]).name for r in kept
    )
    for row in kept:
        img = Image.open(prepared / row["output"])
        assert img.format == "PNG"
        assert img.mode == "RGB"
        assert img.size == (64, 64)
        pixels = np.asarray(img)
        assert (pixels[0] == 255).mean() > 0.5  # the top row is mostly pure white
        assert (pixels != 255).any()  # and there is a subject
    assert (prepared / "review.html").read_text().count('class="card"') == len(
        read_manifest(prepared)
    )


def test_decisions_follow_the_truth_on_clear_cases(prepared, synth_set):
    labels = {lb["file"]: lb for lb in synth_set[1]}
    rows = [r for r in read_manifest(prepared) if r["source"] in labels]
    photo = [r for r in rows if labels[r["source"]]["kind"] == "photo"]
    cluttered = [r for r in rows if labels[r["source"]]["background"] == "cluttered"]
    assert all(r["decision"] == "exclude" for r in photo + cluttered)
    heroes = [
        r
        for r in rows
        if labels[r["source"]]["kind"] == "hero"
        and labels[r["source"]]["background"] != "cluttered"
    ]
    agree = np.mean([r["body"] == labels[r["source"]]["body"] for r in heroes])
    assert agree > 0.9


def test_rerun_recomputes_nothing(raw_set, prepared, monkeypatch):
    before = read_manifest(prepared)

    def boom(*_args, **_kwargs):
        raise AssertionError("segment() ran again")

    monkeypatch.setattr(prep, "segment", boom)
    prep.prepare(raw_set, prepared, CFG, workers=1)
    assert read_manifest(prepared) == before


def test_interrupted_run_continues_where_it_stopped(raw_set, tmp_path, monkeypatch):
    out = tmp_path / "out"

    def stop(done: int, _total: int) -> None:
        if done == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prep.prepare(raw_set, out, CFG, workers=1, progress=stop)
    finished = len(list((out / ".cache" / "records").iterdir()))
    assert 8 <= finished <= 10  # broken files among the first ten leave no record
    calls = []
    real = prep.segment
    monkeypatch.setattr(prep, "segment", lambda *a: calls.append(1) or real(*a))
    prep.prepare(raw_set, out, CFG, workers=1)
    decodable = sum(r["decision"] != "error" for r in read_manifest(out))
    assert len(calls) == decodable - finished  # what finished came from the cache


def test_overrides_are_honoured(raw_set, prepared):
    rows = {r["source"]: r for r in read_manifest(prepared)}
    kept = next(s for s, r in rows.items() if r["decision"] == "keep")
    dropped = next(s for s, r in rows.items() if r.get("reason") == "not_human")
    overrides = prepared / "overrides.csv"
    set_override(overrides, kept, "exclude")
    set_override(overrides, dropped, "include")
    assert read_overrides(overrides) == {kept: "exclude", dropped: "include"}
    upper_only = load_config("superheroes-512", ["prepare.size=64"]).prepare
    prep.prepare(raw_set, prepared, CFG, workers=1)
    rows = {r["source"]: r for r in read_manifest(prepared)}
    assert rows[kept]["decision"] == "exclude"
    assert rows[kept]["reason"] == "override"
    assert rows[dropped]["decision"] == "keep"
    assert rows[dropped]["override"] == "include"
    assert (prepared / rows[dropped]["output"]).exists()
    full = next(
        s
        for s, r in rows.items()
        if r["decision"] == "keep" and r["body"] == "full" and not r["override"]
    )
    set_override(overrides, full, "upper")
    set_override(overrides, "no-such-hero.png", "include")  # a typo is reported, not lost
    summary = prep.prepare(raw_set, prepared, upper_only, workers=1)
    assert summary.unknown_overrides == ["no-such-hero.png"]
    set_override(overrides, "no-such-hero.png", None)
    rows = {r["source"]: r for r in read_manifest(prepared)}
    assert rows[full]["body"] == "upper"
    assert rows[full]["decision"] == "keep"
    unforced = [r for r in rows.values() if r["decision"] == "keep" and r["override"] != "include"]
    assert unforced
    assert all(r["body"] == "upper" for r in unforced)  # --keep upper, unless forced
    for source in (kept, dropped, full):  # the module's shared folder goes back as it was
        set_override(overrides, source, None)
    assert read_overrides(overrides) == {}


def test_malformed_overrides_are_refused_with_the_line(tmp_path):
    path = tmp_path / "overrides.csv"
    path.write_text("# comment\na.png,include\nb.png,maybe\n")
    with pytest.raises(UserError, match=r"overrides.csv:3: expected 'source,action'"):
        read_overrides(path)
    path.write_text("a.png,include\nb.png,full\na.png,exclude\n")  # appended by hand
    assert read_overrides(path) == {"a.png": "exclude", "b.png": "full"}


def test_decide_names_the_first_failing_check():
    def scores(**kw) -> Scores:
        base = {"realism": 0.1, "separability": 0.9, "human": 0.9, "body_cut": 0.3}
        base |= {"fill": 0.4, "tall": 2.0, "base": 0.5}
        return Scores(**{**base, **kw})

    assert decide(scores(), CFG, 1.0) == (None, "upper")
    assert decide(scores(body_cut=0.0), CFG, 1.0) == (None, "full")
    assert decide(scores(body_cut=0.0, fill=0.7, tall=1.1), CFG, 1.0) == (None, "upper")
    assert decide(scores(realism=0.9, human=0.1), CFG, 1.0)[0] == "too_realistic"
    assert decide(scores(separability=0.1, human=0.1), CFG, 1.0)[0] == "not_separable"
    assert decide(scores(), CFG, None)[0] == "not_separable"  # no subject found
    assert decide(scores(human=0.1), CFG, 1.0)[0] == "not_human"
    assert decide(scores(realism=0.9), CFG, CFG.max_upscale + 0.1)[0] == "too_small"


def test_cli_prepare_and_archive(cli, raw_set, tmp_path):
    out = tmp_path / "p"
    code, _, err = cli("prepare", str(raw_set), "--out", str(out), "--size", "64", "--keep", "both")
    assert code == 0, err
    assert "kept" in err
    assert "review" in err
    code, _, err = cli("archive", str(out), "--out", str(tmp_path / "d.zip"))
    assert code == 0, err
    code, _, err = cli("prepare", str(tmp_path / "missing"), "--out", str(out))
    assert code == 2
    assert err.startswith("heroforge: error:")
    code, _, err = cli("prepare", str(raw_set), "--out", str(out), "--keep", "half")
    assert code == 2
    assert "prepare.keep" in err
    code, _, err = cli("prepare", str(raw_set), "--out", str(out), "--set", "train.batch=8")
    assert code == 2
    assert "prepare takes only prepare.KEY=VALUE settings" in err


@pytest.mark.parametrize(
    ("place", "message"),
    [
        ("raw", "lies inside the input folder"),
        ("raw/prepared", "lies inside the input folder"),
        ("file.txt", "is a file; give a folder"),
    ],
)
def test_prepare_refuses_an_out_folder_that_cannot_work(cli, tmp_path, place, message):
    """An --out inside the input would be read as input by the next run."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "hero.png").write_bytes(b"not analysed")
    (tmp_path / "file.txt").write_text("x")
    code, _, err = cli("prepare", str(raw), "--out", str(tmp_path / place))
    assert code == 2
    assert message in err
    assert sorted(p.name for p in raw.iterdir()) == ["hero.png"]  # nothing written there
    code, _, err = cli("prepare", str(raw), "--out", str(tmp_path / "out"), "--workers", "-1")
    assert code == 2
    assert "--workers must be 0" in err


def test_big_jpeg_is_analysed_reduced_and_recorded_at_its_full_size(synth_set, tmp_path):
    """A 3x enlargement of a plain-background hero, as a big JPEG: decoded at half size (the
    work size is 768), it gets the same decision and framing as the original, and the record
    gives the file's size and an upscale measured against it."""
    from heroforge.data.ingest import DEFAULT_LIMITS, Source, decode_image

    folder, labels = synth_set
    label = next(
        lb
        for lb in labels
        if lb["kind"] == "hero" and lb["background"] == "plain" and max(lb["size"]) >= 600
    )
    picture = Image.open(folder / "raw" / label["file"]).convert("RGB")
    big = picture.resize((picture.width * 3, picture.height * 3), Image.Resampling.LANCZOS)
    (tmp_path / "raw").mkdir()
    big.save(tmp_path / "raw" / "big.jpg", quality=95)
    picture.save(tmp_path / "raw" / "small.png")
    data = (tmp_path / "raw" / "big.jpg").read_bytes()
    assert decode_image(data, "big.jpg", shrink_to=prep.WORK_SIDE).scale == 0.5
    cache = tmp_path / "cache"
    for sub in ("records", "thumbs", "framed"):
        (cache / sub).mkdir(parents=True)
    cfg = load_config("superheroes-512").prepare
    records = {}
    for name in ("big.jpg", "small.png"):
        source = Source(
            name, (tmp_path / "raw" / name).stat().st_size, str(tmp_path / "raw"), False
        )
        records[name] = prep.process(source, cfg, cache, DEFAULT_LIMITS)
    big_rec, small_rec = records["big.jpg"], records["small.png"]
    assert big_rec["size"] == [big.width, big.height]
    assert big_rec["method"] == small_rec["method"]
    assert big_rec["upscale"] == pytest.approx(small_rec["upscale"] / 3, rel=0.05)
    framed = [
        np.asarray(Image.open(cache / "framed" / f"{rec['sha256']}.png"), np.float32)
        for rec in (big_rec, small_rec)
    ]
    assert np.abs(framed[0] - framed[1]).mean() < 6.0
