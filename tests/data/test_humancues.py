"""MediaPipe face and pose cues in `prepare`: what they decide, the fallback without MediaPipe,
and the cache key that keeps the two apart."""

import dataclasses
import subprocess
import sys
import warnings

import pytest

import heroforge.data.prepare as prep
from helpers.files import copy_synth_pictures, read_manifest
from heroforge.config import load_config
from heroforge.data import humancues
from heroforge.data.ingest import decode_image
from heroforge.data.inspect import Scores, inspect
from heroforge.data.prepare_decide import decide, is_human
from heroforge.data.segment import on_white, segment

CFG = load_config("superheroes-512", ["prepare.size=64", "prepare.keep=both"]).prepare
COLOUR_ONLY = dataclasses.replace(CFG, human_cues="colour")

needs_mediapipe = pytest.mark.skipif(
    humancues.method(CFG) != humancues.MEDIAPIPE, reason="mediapipe is not importable here"
)


def _segmented(folder, name: str):
    """One picture at prepare's work size, and its segmentation."""
    decoded = decode_image((folder / "raw" / name).read_bytes(), name)
    rgb, alpha, _ = prep._work_size(decoded.rgb, decoded.alpha)
    return rgb, segment(rgb, alpha)


def _cut_out(folder, name: str):
    """(picture, subject on white, subject mask) of one picture, as prepare analyses it."""
    rgb, seg = _segmented(folder, name)
    return rgb, on_white(rgb, seg), seg.mask


def _scores(folder, name: str) -> Scores:
    """All scores of one picture as prepare computes them, with MediaPipe."""
    rgb, seg = _segmented(folder, name)
    scores = inspect(rgb, seg)
    cues = humancues.measure(rgb, on_white(rgb, seg), seg.mask, scores.human, scores.body_cut, CFG)
    return dataclasses.replace(scores, **dataclasses.asdict(cues))


@pytest.mark.parametrize(
    ("mesh", "human", "ran", "measured", "far"),
    [
        (True, 0.2, ["faces", "mesh"], 1.0, -1.0),  # the mesh confirms it in the first view
        # not confirmed in any view; on these colours neither the far view (far_face_human)
        # nor pose (pose_human) could make it human, so they are not looked at
        (False, 0.2, ["faces", "mesh"] * 3, 0.0, -1.0),
        (False, 0.9, ["faces"], -1.0, -1.0),  # human colours and shape: min_face
    ],
)
def test_an_unsure_big_face_needs_the_mesh_on_a_less_human_subject(
    monkeypatch, mesh, human, ran, measured, far
):
    """Both detectors see a face and neither is sure (full-range 0.65, close-up 0.55): on a
    subject of less human colours and shape, an animal's more often than a person's."""
    fake = _FakeDetectors(0.65, mesh, short=0.55)
    cues = _measure_a_box(monkeypatch, fake, human)
    assert fake.ran == ran
    assert (cues.mesh, cues.far_face) == (measured, far)


@needs_mediapipe
def test_drawn_heroes_show_a_face_or_pose_and_outliers_do_not(synth_set):
    folder, labels = synth_set
    judged = [lb for lb in labels[:30] if lb["kind"] != "photo" and lb["background"] != "cluttered"]
    full = [lb for lb in judged if lb["kind"] == "hero" and lb["body"] == "full"]
    others = [lb for lb in judged if not lb["human_like"]]
    assert len(full) >= 5
    assert len(others) >= 4
    for lb in full:  # whole figures float: colour alone never vouches for them, MediaPipe does
        s = _scores(folder, lb["file"])
        assert s.face >= CFG.min_face or s.pose >= CFG.min_pose, lb["file"]
        assert is_human(s, CFG, humancues.MEDIAPIPE), lb["file"]
    fooled_colour = 0
    for lb in others:
        s = _scores(folder, lb["file"])
        assert not is_human(s, CFG, humancues.MEDIAPIPE), lb["file"]
        assert max(s.face, s.face_short) < CFG.min_face
        assert s.pose < CFG.min_pose
        fooled_colour += is_human(s, CFG, humancues.COLOUR)
    assert fooled_colour >= 1  # an orange object the colour/shape score alone calls human


class _FakeDetectors:
    """Face scores and a face-mesh answer chosen by the test; records what was run."""

    def __init__(self, face: float, mesh: bool, short: float = 0.0) -> None:
        self.face, self.mesh, self.short, self.ran = face, mesh, short, []

    def faces(self, view, subject_width):
        self.ran.append("faces")
        return self.face, self.short

    def landmarks(self, view):
        self.ran.append("mesh")
        return self.mesh

    def body(self, view):
        self.ran.append("pose")
        return 0.0, 0.0

    def presence(self, view):
        self.ran.append("figure")
        return 0.99


def _measure_a_box(monkeypatch, fake: _FakeDetectors, human: float) -> humancues.Cues:
    """humancues.measure with these detectors on a floating box of this colour/shape score."""
    import numpy as np

    monkeypatch.setattr(humancues, "_detectors", lambda: fake)
    rgb = np.full((64, 64, 3), 255, np.uint8)
    subject = np.zeros((64, 64), bool)
    subject[10:50, 20:44] = True
    return humancues.measure(rgb, rgb, subject, human=human, body_cut=0.0, cfg=CFG)


@pytest.mark.parametrize(
    ("face", "mesh", "human", "ran", "measured", "far", "head"),
    [
        (0.7, True, 0.2, ["faces"], -1.0, -1.0, -1.0),  # over min_face: no mesh, far view, pose
        (0.55, True, 0.2, ["faces", "mesh"], 1.0, -1.0, -1.0),  # a weaker face the mesh confirms
        # every view; on colours and shape where neither a far face nor a pose could count,
        # nothing more
        (0.55, False, 0.2, ["faces", "mesh"] * 3, 0.0, -1.0, -1.0),
        (0.3, True, 0.2, ["faces"] * 3, -1.0, -1.0, -1.0),  # too weak for the mesh
        # no face on human-ish colours and shape: the silhouette's head (a box: none); pose
        # from pose_human on
        (0.3, True, 0.7, ["faces"] * 3, -1.0, -1.0, 0.0),
        (0.3, True, 0.8, ["faces"] * 3 + ["pose"], -1.0, -1.0, 0.0),
        # on human colours and shape the far view too (counted apart), then pose
        (0.55, False, 0.85, ["faces", "mesh"] * 4 + ["pose"], 0.0, 0.0, 0.0),
        # nothing found on a subject of human colours and shape: the figure view last
        (0.3, True, 0.95, ["faces"] * 4 + ["pose", "figure"], -1.0, 0.0, 0.0),
        (0.7, True, 0.95, ["faces"], -1.0, -1.0, -1.0),  # a face: no figure view, no head
        # a full-range face the close-up detector does not see at all: a small face, min_face
        (0.65, False, 0.2, ["faces"], -1.0, -1.0, -1.0),
    ],
)
def test_which_detectors_run_and_when(monkeypatch, face, mesh, human, ran, measured, far, head):
    fake = _FakeDetectors(face, mesh)
    cues = _measure_a_box(monkeypatch, fake, human)
    assert fake.ran == ran
    assert cues.mesh == measured
    assert cues.far_face == far
    assert cues.figure == (0.99 if "figure" in ran else -1.0)
    assert cues.head == head


class _FindsOnly(_FakeDetectors):
    """Detectors that find no face in the usual views, and only this one cue (a face in the
    far view, the fourth a floating white box gets, a pose or a faceless figure)."""

    def __init__(self, cue: str) -> None:
        super().__init__(face=0.0, mesh=False)
        self.cue = cue

    def faces(self, view, subject_width):
        super().faces(view, subject_width)
        far = self.cue == "far_face" and self.ran.count("faces") == 4
        return (0.9, 0.9) if far else (0.0, 0.0)

    def body(self, view):
        super().body(view)
        return (0.9, 0.0) if self.cue == "pose" else (0.0, 0.0)

    def presence(self, view):
        super().presence(view)
        return 0.99 if self.cue == "figure" else 0.0


@pytest.mark.parametrize("cue", sorted(humancues.GATED_CUES))
def test_a_gated_cue_is_looked_for_exactly_where_it_could_count(monkeypatch, cue):
    # measure() and is_human() share the gate: just under it the cue is not even looked for
    # (and would not count), from it on it is found and makes the subject human-like
    found_head = 0.3 if cue == "head" else 0.0
    monkeypatch.setattr(humancues, "pictogram_head", lambda mask: found_head)
    gate = getattr(CFG, humancues.GATED_CUES[cue])
    for human, counts in ((gate - 0.01, False), (gate, True)):
        cues = _measure_a_box(monkeypatch, _FindsOnly(cue), human)
        assert (getattr(cues, cue) != -1.0) == counts, human
        base = {"realism": 0.1, "separability": 0.9, "body_cut": 0.0, "base": 0.5}
        scores = Scores(**base, human=human, fill=0.4, tall=2.0, **dataclasses.asdict(cues))
        assert is_human(scores, CFG, humancues.MEDIAPIPE) == counts, human


@needs_mediapipe
def test_the_pose_model_is_sure_of_whole_figures_and_not_of_animals_or_objects(synth_set):
    folder, labels = synth_set
    detectors = humancues._detectors()

    def presence(label: dict) -> float:
        _, white, mask = _cut_out(folder, label["file"])
        return detectors.presence(humancues._subject_view(white, mask, humancues.FIGURE_MARGIN)[0])

    clean = [lb for lb in labels[:120] if lb["background"] != "cluttered"]
    figures = [presence(lb) for lb in clean if lb["kind"] == "hero" and lb["body"] == "full"]
    things = [presence(lb) for lb in clean if lb["kind"] in ("animal", "object", "robot")]
    assert len(figures) >= 10
    assert len(things) >= 8
    assert sum(p >= CFG.min_figure for p in figures) >= 0.9 * len(figures)
    assert max(things) < CFG.min_figure


@needs_mediapipe
def test_the_face_mesh_confirms_drawn_faces_and_not_objects(synth_set):
    folder, labels = synth_set
    detectors = humancues._detectors()

    def confirmed(label: dict) -> bool:
        views = humancues._views(*_cut_out(folder, label["file"]))
        return any(detectors.landmarks(view) for view, _ in views)

    drawn = [lb for lb in labels[:60] if lb["kind"] == "hero" and lb["background"] != "cluttered"]
    things = [lb for lb in labels[:60] if lb["kind"] in ("object", "robot")]
    assert len(drawn) >= 10
    assert len(things) >= 3
    assert sum(map(confirmed, drawn)) >= len(drawn) // 4
    assert not any(map(confirmed, things))


def test_the_not_human_rule_with_and_without_mediapipe():
    base = {"realism": 0.1, "separability": 0.9, "human": 1.0, "body_cut": 0.0, "base": 0.5}
    floating = Scores(**base, fill=0.4, tall=2.0, face=0.0, face_short=0.0, pose=0.0, knee=0.0)
    mp, colour = humancues.MEDIAPIPE, humancues.COLOUR
    assert decide(floating, CFG, 1.0, colour)[0] is None  # colour alone: human-like
    assert decide(floating, CFG, 1.0, mp)[0] == "not_human"  # no face, no pose, floating
    bust = dataclasses.replace(floating, body_cut=0.5)
    assert decide(bust, CFG, 1.0, mp)[0] is None  # a bust: colour alone may vouch
    assert decide(dataclasses.replace(bust, human=0.8), CFG, 1.0, mp)[0] == "not_human"
    for cue in ({"face": 0.7}, {"face_short": 0.8}, {"face": 0.5, "mesh": 1.0}):
        assert decide(dataclasses.replace(floating, human=0.2, **cue), CFG, 1.0, mp)[0] is None
    # a full-range face neither detector is sure of: enough on a subject of human colours and
    # shape, or where the close-up detector saw nothing (a small face), elsewhere only where
    # the face mesh confirmed it
    unsure = dataclasses.replace(floating, face=0.65, face_short=0.55, mesh=0.0, human=0.8)
    assert decide(unsure, CFG, 1.0, mp)[0] == "not_human"
    assert decide(dataclasses.replace(unsure, mesh=1.0), CFG, 1.0, mp)[0] is None
    assert decide(dataclasses.replace(unsure, human=0.85), CFG, 1.0, mp)[0] is None
    assert decide(dataclasses.replace(unsure, face_short=0.0), CFG, 1.0, mp)[0] is None
    # a pose counts on a subject whose colours and shape are human-ish, not on a cap or a sword
    assert decide(dataclasses.replace(floating, human=0.8, pose=0.9), CFG, 1.0, mp)[0] is None
    assert (
        decide(dataclasses.replace(floating, human=0.7, pose=0.9), CFG, 1.0, mp)[0] == "not_human"
    )
    # a weaker close-up face the mesh did not confirm: enough only on a subject whose colours
    # and shape are very human (a drawn head), not on one merely human-ish (an animal)
    weak_face = dataclasses.replace(floating, face_short=0.65, mesh=0.0, human=0.9)
    assert decide(weak_face, CFG, 1.0, mp)[0] == "not_human"
    assert decide(dataclasses.replace(weak_face, human=0.97), CFG, 1.0, mp)[0] is None
    fainter = dataclasses.replace(weak_face, human=0.97, face_short=0.5)
    assert decide(fainter, CFG, 1.0, mp)[0] == "not_human"
    # a face found only with the subject smaller in the view: enough on a subject of human
    # colours and shape, not on one of an animal's
    far = dataclasses.replace(floating, mesh=0.0, far_face=1.0, human=0.9)
    assert decide(far, CFG, 1.0, mp)[0] is None
    assert decide(dataclasses.replace(far, human=0.7), CFG, 1.0, mp)[0] == "not_human"
    assert decide(dataclasses.replace(far, far_face=0.0), CFG, 1.0, mp)[0] == "not_human"
    # a whole figure drawn without a face: the pose landmark model's belief counts on a subject
    # of human colours and shape, not on an animal's
    figure = dataclasses.replace(floating, figure=0.97, human=0.95)
    assert decide(figure, CFG, 1.0, mp)[0] is None
    assert decide(dataclasses.replace(figure, human=0.8), CFG, 1.0, mp)[0] == "not_human"
    assert decide(dataclasses.replace(figure, figure=0.9), CFG, 1.0, mp)[0] == "not_human"
    # feet on the bottom edge: visible knees make it a standing figure, not a bust
    standing = dataclasses.replace(bust, body_cut=0.15, face=0.8)
    assert decide(standing, CFG, 1.0, mp)[1] == "upper"
    assert decide(dataclasses.replace(standing, knee=0.9), CFG, 1.0, mp)[1] == "full"
    assert decide(dataclasses.replace(bust, knee=0.9), CFG, 1.0, mp)[1] == "upper"


@pytest.fixture
def no_mediapipe(monkeypatch):
    """Make `import mediapipe` fail in this process, as on a machine without it."""
    for name in [n for n in sys.modules if n == "mediapipe" or n.startswith("mediapipe.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    monkeypatch.setattr(humancues, "_state", {})  # forget the earlier import check
    monkeypatch.setattr(prep, "_warned", set())


def test_without_mediapipe_prepare_uses_colour_cues_and_says_so(synth_set, tmp_path, no_mediapipe):
    raw = copy_synth_pictures(synth_set, tmp_path / "raw", 5)
    assert humancues.method(CFG) == humancues.COLOUR
    with pytest.warns(RuntimeWarning, match="MediaPipe cannot be imported"):
        summary = prep.prepare(raw, tmp_path / "out", CFG, workers=1)
    assert summary.human_cues == "colour"
    rows = read_manifest(tmp_path / "out")
    assert rows
    assert all(r["human_cues"] == "colour" for r in rows)
    assert all(r["scores"]["face"] == -1 and r["scores"]["pose"] == -1 for r in rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per process, not on every run
        prep.prepare(raw, tmp_path / "again", CFG, workers=1)


def test_the_cache_key_follows_the_method(synth_set, tmp_path, monkeypatch):
    with_mp = prep.settings_key(CFG)
    assert prep.settings_key(COLOUR_ONLY) != with_mp or humancues.method(CFG) == "colour"
    assert prep.settings_key(dataclasses.replace(CFG, min_human=0.5)) == with_mp  # decision only
    assert prep.settings_key(dataclasses.replace(CFG, min_pose=0.9)) == with_mp
    assert prep.settings_key(dataclasses.replace(CFG, weak_face_short=0.3)) == with_mp
    assert prep.settings_key(dataclasses.replace(CFG, min_figure=0.5)) == with_mp
    if humancues.method(CFG) == humancues.MEDIAPIPE:  # a threshold that gates the detectors
        gates = ("human_alone", "alone_min_cut", "min_face", "min_face_short", "min_face_mesh")
        for gate in (*gates, *humancues.GATED_CUES.values()):
            assert prep.settings_key(dataclasses.replace(CFG, **{gate: 0.42})) != with_mp, gate
    # a cache made with colour cues only is not reused once MediaPipe is asked for
    raw = copy_synth_pictures(synth_set, tmp_path / "raw", 3)
    prep.prepare(raw, tmp_path / "out", COLOUR_ONLY, workers=1)
    calls = []
    real = prep.segment
    monkeypatch.setattr(prep, "segment", lambda *a: calls.append(1) or real(*a))
    summary = prep.prepare(raw, tmp_path / "out", CFG, workers=1)
    assert len(calls) == (3 if humancues.method(CFG) == humancues.MEDIAPIPE else 0)
    assert {r["human_cues"] for r in read_manifest(tmp_path / "out")} == {summary.human_cues}


@needs_mediapipe
def test_mediapipe_says_nothing_on_stderr(synth_set):
    """MediaPipe's C++ logging goes to file descriptor 2; a prepare run must stay quiet."""
    folder, labels = synth_set
    hero = next(lb for lb in labels if lb["kind"] == "hero" and lb["body"] == "full")
    code = (
        "import time\n"
        "from heroforge.config import load_config\n"
        "from heroforge.data import humancues\n"
        "from heroforge.data.ingest import decode_image\n"
        "from heroforge.data.segment import on_white, segment\n"
        f"data = open({str(folder / 'raw' / hero['file'])!r}, 'rb').read()\n"
        "rgb = decode_image(data, 'hero').rgb\n"
        "seg = segment(rgb)\n"
        "cfg = load_config('superheroes-512').prepare\n"
        "print(humancues.measure(rgb, on_white(rgb, seg), seg.mask, 0.0, 0.0, cfg).face)\n"
        "print(humancues._detectors().presence(humancues._fit(rgb)))  # the figure graph too\n"
        "time.sleep(0.5)  # graph threads that log late would show up now\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    face, presence = map(float, done.stdout.split())
    assert face >= 0
    assert 0 <= presence <= 1
    assert done.stderr == ""


@needs_mediapipe
def test_a_pool_still_works_after_this_process_ran_the_detectors(synth_set, tmp_path):
    """Workers forked from a process with MediaPipe graphs die; prepare starts them fresh."""
    folder, labels = synth_set
    # the detectors now exist in this process (an animal on a plain background: colour and
    # shape alone cannot decide)
    animal = next(lb for lb in labels if lb["kind"] == "animal" and lb["background"] == "plain")
    _scores(folder, animal["file"])
    assert humancues.made_here()
    # 8 pictures: a process pool, not a serial run
    raw = copy_synth_pictures(synth_set, tmp_path / "raw", 8)
    summary = prep.prepare(raw, tmp_path / "out", CFG, workers=2)
    assert summary.inputs == 8
    assert summary.human_cues == humancues.MEDIAPIPE
    assert all(r["decision"] != "error" for r in read_manifest(tmp_path / "out"))


def _yellow_hero(seed: int, body: str):
    """(picture, subject on white, mask) of a synthetic hero drawn with emoji-yellow skin."""
    import numpy as np

    from heroforge.data import synth_figures
    from heroforge.data.synth import hero_picture

    palette = {**synth_figures.hero_palette(np.random.default_rng(seed)), "skin": (255, 204, 77)}
    rgb = np.asarray(hero_picture(seed, palette, body, (420, 520)).convert("RGB"))
    mask = rgb.min(axis=2) < 245
    return rgb, np.where(mask[..., None], rgb, 255).astype(np.uint8), mask


def test_a_yellow_subject_is_looked_at_again_in_a_skin_tone(monkeypatch):
    """After the three views as drawn, the subject with its yellow painted TONE; the far view
    likewise; only on a subject whose colour/shape score could be a person's (TONED_HUMAN). A
    subject without yellow gets no extra views (test_which_detectors_run_and_when)."""
    import numpy as np

    seen = []

    class Detectors(_FakeDetectors):
        def faces(self, view, subject_width):  # finds a face only in the painted view
            seen.append(bool(np.all(view == humancues.TONE, axis=2).any()))
            return (0.8 if seen[-1] else 0.0), 0.0

    monkeypatch.setattr(humancues, "_detectors", lambda: Detectors(0.0, False))
    rgb, white, mask = _yellow_hero(6, "full")
    cues = humancues.measure(rgb, white, mask, human=0.6, body_cut=0.0, cfg=CFG)
    assert seen == [False, False, False, True]
    assert cues.face == 0.8
    assert cues.far_face == -1.0  # a face was found: no far view

    seen.clear()
    monkeypatch.setattr(Detectors, "faces", lambda self, view, width: seen.append(1) or (0, 0))
    humancues.measure(rgb, white, mask, human=0.6, body_cut=0.0, cfg=CFG)
    assert len(seen) == 4  # four views; no far view on these colours (far_face_human)
    seen.clear()
    humancues.measure(rgb, white, mask, human=0.85, body_cut=0.0, cfg=CFG)
    assert len(seen) == 6  # four views, then the far view as drawn and painted
    seen.clear()
    humancues.measure(rgb, white, mask, human=0.55, body_cut=0.0, cfg=CFG)
    assert len(seen) == 3  # three views as drawn


@needs_mediapipe
def test_mediapipe_finds_a_yellow_face_only_once_it_is_painted_a_skin_tone(monkeypatch):
    """Of 32 synthetic heroes drawn yellow, the one that no view as drawn shows a face in."""
    rgb, white, mask = _yellow_hero(5, "upper")
    cues = humancues.measure(rgb, white, mask, human=0.8, body_cut=0.0, cfg=CFG)
    assert cues.face >= CFG.min_face or cues.face_short >= CFG.min_face_short
    monkeypatch.setattr(humancues, "_toned", lambda view: None)
    # colours and shape for which the far view is looked at too
    cues = humancues.measure(rgb, white, mask, human=0.85, body_cut=0.0, cfg=CFG)
    assert cues.face < CFG.min_face
    assert cues.face_short < CFG.min_face_short
    assert cues.far_face == 0.0
