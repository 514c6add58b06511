"""Dataset review: manifest rows and thumbnails; a click writes the overrides `prepare` honours."""

import errno
import io

from PIL import Image

from helpers.files import read_manifest
from heroforge.config import load_config
from heroforge.data.overrides import read_overrides
from heroforge.data.prepare import prepare


def test_review_lists_the_manifest_with_thumbnails(client, prepared):
    data = client.get("/api/review").json()
    manifest = read_manifest(prepared)
    assert [r["source"] for r in data["rows"]] == [r["source"] for r in manifest]
    assert data["actions"] == ["include", "exclude", "upper", "full"]
    assert data["sets"] == [{"index": 0, "name": "prepared", "path": str(prepared.resolve())}]
    kept = next(r for r in data["rows"] if r["decision"] == "keep")
    assert kept["framed"]
    assert kept["pending"] is None
    assert "thumb" not in kept
    thumb = client.get(f"/api/review/thumb/{kept['sha256']}.jpg")
    assert thumb.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(thumb.content)).size) <= 160
    framed = client.get(f"/api/review/thumb/{kept['sha256']}.png")
    assert Image.open(io.BytesIO(framed.content)).size == (32, 32)
    assert client.get(f"/api/review/thumb/{'0' * 64}.jpg").status_code == 404
    assert client.get("/api/review?set=1").status_code == 404


def test_a_click_writes_the_override_and_prepare_honours_it(client, prepared, synth_set):
    rows = client.get("/api/review").json()["rows"]
    excluded = next(r for r in rows if r["decision"] == "exclude" and r["framed"])
    kept = next(r for r in rows if r["decision"] == "keep")
    for source, action in ((excluded["source"], "include"), (kept["source"], "upper")):
        answer = client.post("/api/review/override", json={"source": source, "action": action})
        assert answer.json() == {"source": source, "pending": action}
    assert read_overrides(prepared / "overrides.csv") == {
        excluded["source"]: "include",
        kept["source"]: "upper",
    }
    pending = {r["source"]: r["pending"] for r in client.get("/api/review").json()["rows"]}
    assert pending[excluded["source"]] == "include"
    # prepare, run again on the same pictures, reads the file and changes its decision
    raw = synth_set[0] / "raw"
    prepare(raw, prepared, load_config("tiny-cpu").prepare, workers=1)
    after = {r["source"]: r for r in read_manifest(prepared)}
    assert after[excluded["source"]]["decision"] == "keep"
    assert after[excluded["source"]]["override"] == "include"
    assert after[kept["source"]]["body"] == "upper"
    # null removes the override again
    client.post("/api/review/override", json={"source": excluded["source"], "action": None})
    assert read_overrides(prepared / "overrides.csv") == {kept["source"]: "upper"}


def test_override_refuses_unknown_pictures_and_actions(client, prepared):
    before = (prepared / "overrides.csv").read_text()
    source = read_manifest(prepared)[0]["source"]
    cases = [
        ({"source": "not-in-the-manifest.png", "action": "include"}, 404),
        ({"source": source, "action": "delete"}, 400),
        ({"source": source, "action": "include", "set": 3}, 404),
        ({"source": "", "action": "include"}, 422),
        ({"action": "include"}, 422),
    ]
    for body, status in cases:
        assert client.post("/api/review/override", json=body).status_code == status, body
    assert (prepared / "overrides.csv").read_text() == before


def test_a_full_disk_while_writing_an_override_is_a_503(client, prepared, monkeypatch):
    before = (prepared / "overrides.csv").read_text()
    source = read_manifest(prepared)[0]["source"]

    def no_space(*_args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("heroforge.fileio.os.replace", no_space)
    answer = client.post("/api/review/override", json={"source": source, "action": "exclude"})
    assert answer.status_code == 503
    detail = answer.json()["detail"]
    assert detail.startswith(f"cannot write {prepared / 'overrides.csv'}: ")
    assert "No space left on device" in detail
    assert "\n" not in detail
    assert (prepared / "overrides.csv").read_text() == before
    assert not [p for p in prepared.iterdir() if p.name.endswith(".tmp")]  # no temp file left
