"""Face and pose cues from MediaPipe's bundled models, beside the colour/shape score.

On real drawn art the colour/shape score alone cannot tell a brown animal or an orange object
from a person; MediaPipe's face detectors and pose landmarker can (measured on Noto emoji art,
see benchmarks/prepare_realart.py). The models ship inside the mediapipe wheel: nothing is
downloaded. When mediapipe cannot be imported, `prepare` falls back to colour/shape alone and
records that in the manifest ("human_cues": "colour") and in its summary.

Detectors are made lazily, once per process (prepare analyses pictures in a process pool), and
run only where the colour/shape cues are not decisive, on pictures at most VIEW_SIDE big.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from heroforge.config import PrepareConfig
from heroforge.data.headshape import pictogram_head

MEDIAPIPE = "mediapipe"
COLOUR = "colour"
CUES_VERSION = "mediapipe-0.10/9"  # bump when views, models or gating change: part of the cache key
VIEW_SIDE = 256  # the detectors' own inputs are 128-256 px: bigger only costs time
# A face narrower than this share of the subject's width is not the subject's own face: a face
# in a background the mask failed to remove, or a pattern. Faces of drawn people measured 8%
# (whole figures with spread arms) to 80% (heads) of their subject's width; those found on
# failed masks (the subject is mostly background) 6-9%.
MIN_FACE_WIDTH = 0.075
NOSE, LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_KNEE, RIGHT_KNEE = 0, 11, 12, 25, 26
# The pose solution finds a person by the face first, and so misses whole figures drawn with
# none (seen from behind, in profile, pictograms). Its landmark model, given the subject
# directly, says how sure it is that a person fills the view: its second output, a
# probability. This graph runs that model alone, from the wheel, with MediaPipe's own
# calculators (the pose solution's model file: nothing more is installed or downloaded).
FIGURE_GRAPH = """
input_stream: "image"
output_stream: "presence"
node {
  calculator: "ImageToTensorCalculator"
  input_stream: "IMAGE:image"
  output_stream: "TENSORS:input"
  options {
    [mediapipe.ImageToTensorCalculatorOptions.ext] {
      output_tensor_width: 256
      output_tensor_height: 256
      keep_aspect_ratio: true
      output_tensor_float_range { min: 0.0 max: 1.0 }
      border_mode: BORDER_ZERO
    }
  }
}
node {
  calculator: "InferenceCalculator"
  input_stream: "TENSORS:input"
  output_stream: "TENSORS:outputs"
  options {
    [mediapipe.InferenceCalculatorOptions.ext] {
      model_path: "mediapipe/modules/pose_landmark/pose_landmark_full.tflite"
      delegate { xnnpack {} }
    }
  }
}
node {
  calculator: "SplitTensorVectorCalculator"
  input_stream: "outputs"
  output_stream: "flag"
  options {
    [mediapipe.SplitVectorCalculatorOptions.ext] { ranges { begin: 1 end: 2 } }
  }
}
node {
  calculator: "TensorsToFloatsCalculator"
  input_stream: "TENSORS:flag"
  output_stream: "FLOAT:presence"
}
"""

# per process: "importable" (bool), "error" (str), "made" (pids that built graphs), detectors
# by pid
_state: dict = {}


@dataclass
class Cues:
    """MediaPipe's evidence for one picture; -1 = that detector was not run (not needed)."""

    face: float = -1.0  # best full-range face detector score over the views
    face_short: float = -1.0  # best short-range (close-up) face detector score
    pose: float = -1.0  # mean visibility of nose and shoulders; 0 = no pose found
    knee: float = -1.0  # best visibility of a knee that lies inside the picture
    mesh: float = -1.0  # 1: the face mesh placed landmarks on a weaker face, 0: it did not
    far_face: float = -1.0  # 1: the far view (see FAR_MARGIN) found a face, 0: it did not
    figure: float = -1.0  # the pose model's belief that a person fills the figure view
    head: float = -1.0  # a pictogram's round head set apart at the top (headshape.py), 0 = none


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """MediaPipe's C++ side (absl logging, TFLite) writes INFO/WARNING lines straight to file
    descriptor 2 while graphs are built and first run, which would flood a progress bar;
    sys.stderr cannot catch them, so fd 2 points to /dev/null for the duration."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # protobuf deprecation notes from inside mediapipe
        if sys.stderr is not None:
            sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2 at all (a daemon): nothing to silence
            yield
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)


def _import_error() -> str | None:
    """None when mediapipe imports, else why not (checked once per process)."""
    if "importable" not in _state:
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        try:
            with _quiet():
                from mediapipe.python.solutions import face_detection, face_mesh, pose  # noqa: F401
            _state["importable"], _state["error"] = True, None
        except Exception as exc:  # any failure (missing, broken protobuf...) means: fall back
            _state["importable"], _state["error"] = False, f"{type(exc).__name__}: {exc}"
    return _state["error"]


def method(cfg: PrepareConfig) -> str:
    """The cues this process uses: "mediapipe" when asked for and importable, else "colour"."""
    if cfg.human_cues == MEDIAPIPE and _import_error() is None:
        return MEDIAPIPE
    return COLOUR


def fallback_reason(cfg: PrepareConfig) -> str | None:
    """Why MediaPipe was asked for but is not used (None when it is used or not asked for)."""
    return _import_error() if cfg.human_cues == MEDIAPIPE else None


class _Detectors:
    def __init__(self) -> None:
        from mediapipe.python.solutions import face_detection, face_mesh, pose

        with _quiet():
            # a low floor so that the manifest shows weak detections too; the thresholds in
            # PrepareConfig decide
            floor = {"min_detection_confidence": 0.3}
            self.face = face_detection.FaceDetection(model_selection=1, **floor)
            self.face_short = face_detection.FaceDetection(model_selection=0, **floor)
            # model_complexity 1 is the pose model inside the wheel; 0 and 2 are downloaded
            self.pose = pose.Pose(static_image_mode=True, model_complexity=1)
            self.mesh = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, **floor)
            # made when first needed: it holds a second pose model (about 65 MB)
            self.figure: Any = None
            # Graph threads open their models (and log about it) after construction returns;
            # one run each waits for that, while fd 2 is still silenced
            blank = np.full((64, 64, 3), 255, np.uint8)
            for detector in (self.face, self.face_short, self.pose, self.mesh):
                detector.process(blank)

    def close(self) -> None:
        for detector in (self.face, self.face_short, self.pose, self.mesh, self.figure):
            if detector is not None:
                detector.close()

    def landmarks(self, view: np.ndarray) -> bool:
        """Whether the face mesh places its landmarks on a face in the view."""
        with _quiet():
            return bool(self.mesh.process(view).multi_face_landmarks)

    def faces(self, view: np.ndarray, subject_width: float) -> tuple[float, float]:
        """Best (full-range, short-range) scores of faces at least MIN_FACE_WIDTH of the
        subject wide; subject_width is the subject's width as a share of the view's."""
        with _quiet():
            found = self.face.process(view).detections or []
            close = self.face_short.process(view).detections or []

        def best(detections: list) -> float:
            widths = [d.location_data.relative_bounding_box.width for d in detections]
            return max(
                (d.score[0] for d, w in zip(detections, widths, strict=True)
                 if w >= MIN_FACE_WIDTH * subject_width),
                default=0.0,
            )  # fmt: skip

        return float(best(found)), float(best(close))

    def presence(self, view: np.ndarray) -> float:
        """The pose landmark model's probability that a person fills the view."""
        with _quiet():
            if self.figure is None:
                self.figure = _figure_graph()
            return float(self.figure.process({"image": view}).presence)

    def body(self, view: np.ndarray) -> tuple[float, float]:
        """(pose, knee): see Cues."""
        with _quiet():
            result = self.pose.process(view)
        if result.pose_landmarks is None:
            return 0.0, 0.0
        marks = result.pose_landmarks.landmark
        pose = np.mean([marks[i].visibility for i in (NOSE, LEFT_SHOULDER, RIGHT_SHOULDER)])
        # a bust's knees are guessed below the picture; only knees inside it count
        knees = [marks[i].visibility for i in (LEFT_KNEE, RIGHT_KNEE) if 0 <= marks[i].y <= 1]
        return float(pose), float(max(knees, default=0.0))


def _figure_graph() -> Any:  # mediapipe's SolutionBase, imported only when needed
    from google.protobuf import text_format  # type: ignore[import-untyped]
    from mediapipe.framework import calculator_pb2
    from mediapipe.python import solution_base

    return solution_base.SolutionBase(
        graph_config=text_format.Parse(FIGURE_GRAPH, calculator_pb2.CalculatorGraphConfig()),
        outputs=["presence"],
        stream_type_hints={"presence": solution_base.PacketDataType.FLOAT},
    )


def _detectors() -> _Detectors:
    """This process's detectors. Keyed by pid: a forked worker must not use its parent's
    graphs (their threads did not come along), so it makes its own."""
    pid = os.getpid()
    if pid not in _state:
        _state.setdefault("made", set()).add(pid)
        _state[pid] = _Detectors()
    return _state[pid]


def made_here() -> bool:
    """Whether this process has built MediaPipe graphs. A process forked from it after that
    dies building its own (measured: BrokenProcessPool), even once they are closed, so its
    workers must be started fresh ("spawn")."""
    return os.getpid() in _state.get("made", ())


def release() -> None:
    """Close this process's detectors (before forking workers, so that no graph threads are
    running while the process is copied)."""
    detectors = _state.pop(os.getpid(), None)
    if detectors is not None:
        detectors.close()


def _fit(img: np.ndarray, enlarge: bool = False) -> np.ndarray:
    """img at most VIEW_SIDE big; with enlarge, exactly that big (its longer side)."""
    h, w = img.shape[:2]
    factor = VIEW_SIDE / max(h, w)
    if factor == 1 or (factor > 1 and not enlarge):
        return np.ascontiguousarray(img)
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    # area averaging to shrink; cubic to enlarge a small subject (sharper edges than linear)
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    return cv2.resize(img, size, interpolation=interpolation)


def _on_square(img: np.ndarray, margin: float = 0.06) -> tuple[np.ndarray, float]:
    """img centred on a white square with a margin, as prepare frames a subject, filling the
    view; and img's width as a share of the square's."""
    h, w = img.shape[:2]
    side = round(max(h, w) / (1 - 2 * margin))
    canvas = np.full((side, side, 3), 255, np.uint8)
    top, left = (side - h) // 2, (side - w) // 2
    canvas[top : top + h, left : left + w] = img
    return _fit(canvas, enlarge=True), w / side


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): the subject's bounding box."""
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    return y, y + h, x, x + w


# Yellow, the default skin of emoji people (OpenCV hue 20-35 of 180, saturated). The face
# detectors learnt faces in skin tones and miss yellow ones: none of Streamline's 21 missed
# heads and figures was found as drawn, 11 with the yellow painted TONE. A view with it painted
# is looked at after the others when at least MIN_YELLOW of the subject (what is not white in
# the view) is yellow (a whole figure's face is 1-3% of it), and only on a subject whose
# colour/shape score is at least TONED_HUMAN: once painted, yellow animals and objects show
# faces too, a third of them on scores under 0.6, where none of the people found this way
# lies. Realart benchmarks, 13 sets: keep F1 +0.008 and not_human F1 +0.008 on average,
# Streamline +0.051 / +0.041, Fluent seed 8 -0.002 / -0.005 (the one set that lost)
YELLOW_LOW, YELLOW_HIGH = (20, 80, 0), (35, 255, 255)
TONE = (240, 190, 150)
MIN_YELLOW = 0.01
TONED_HUMAN = 0.6


def _toned(view: np.ndarray) -> np.ndarray | None:
    """view with its yellow painted a light skin tone; None when it holds too little yellow."""
    yellow = cv2.inRange(cv2.cvtColor(view, cv2.COLOR_RGB2HSV), YELLOW_LOW, YELLOW_HIGH) > 0
    subject = int(np.count_nonzero(view.min(axis=2) < 250))
    if np.count_nonzero(yellow) < MIN_YELLOW * max(1, subject):
        return None
    toned = view.copy()
    toned[yellow] = TONE
    return toned


def _painted(
    view: np.ndarray, subject_width: float, toned: bool
) -> Iterator[tuple[np.ndarray, float]]:
    """The view's _toned copy, if toned and it holds enough yellow; else nothing."""
    painted = _toned(view) if toned else None
    if painted is not None:
        yield painted, subject_width


def _views(
    whole: np.ndarray, white: np.ndarray, mask: np.ndarray, toned: bool = False
) -> Iterator[tuple[np.ndarray, float]]:
    """The pictures the face detectors look at, most telling first, each with the subject's
    width as a share of the view's: the picture as it is (whole: _fit of it); the subject
    alone on white (no busy background), enlarged to fill the view; the top square of the
    subject, where a head is, bigger still (a small head on a big torso is missed in the whole
    picture); last, if toned, the subject view with its yellow painted a skin tone."""
    y0, y1, x0, x1 = _box(mask)
    yield whole, (x1 - x0) / mask.shape[1]
    subject, subject_width = _on_square(white[y0:y1, x0:x1])
    yield subject, subject_width
    side = min(x1 - x0, y1 - y0)
    left = (x0 + x1 - side) // 2
    head, share = _on_square(white[y0 : y0 + side, left : left + side])
    yield head, share * (x1 - x0) / side  # the subject is wider than the square by this
    yield from _painted(subject, subject_width, toned)


# The far view: the subject alone on white with this margin per side, so that it fills only half
# of the view. The detectors learnt faces at the sizes photographs show them; a drawn head that
# fills the view is often missed there and found smaller (Noto Emoji v1 heads and busts)
FAR_MARGIN = 0.25


def _subject_view(white: np.ndarray, mask: np.ndarray, margin: float) -> tuple[np.ndarray, float]:
    """The subject alone on white, with this margin per side (_on_square)."""
    y0, y1, x0, x1 = _box(mask)
    return _on_square(white[y0:y1, x0:x1], margin)


# The figure view: the subject alone on white with this margin per side. The landmark model
# expects a person with some room around them (as the pose detector crops one); at a margin of
# 0.1 drawn figures scored lower (realart benchmarks)
FIGURE_MARGIN = 0.2


def full_face_bar(human: float, short: float, cfg: PrepareConfig) -> float:
    """The full-range face score that makes a subject human-like alone: min_face, or
    unsure_face where the close-up detector saw a face too but was not sure of it either
    (0 < short) on a subject whose colour/shape score is under unsure_face_human. A big face
    that neither model is sure of is more often an animal's: a drawn person's face that fills
    the view scores high on the close-up model, a whole figure's small one nothing. A weaker
    face counts there when the face mesh confirms it, as any weaker face does."""
    unsure = short > 0 and human < cfg.unsure_face_human
    return cfg.unsure_face if unsure else cfg.min_face


def _look(
    detectors: _Detectors, view: np.ndarray, subject_width: float, cfg: PrepareConfig,
    human: float = 1.0, seen_short: float = 0.0,
) -> tuple[float, float, float, bool]:  # fmt: skip
    """(full-range, short-range, mesh, face found) for one view, on a subject of this
    colour/shape score after views whose best short-range score was seen_short (the default
    human 1 holds the full-range face to min_face). The mesh (1 or 0) is asked only about a
    face too weak for the detectors' own thresholds (full_face_bar, min_face_short) but at
    least min_face_mesh, else it is -1."""
    full, short = detectors.faces(view, subject_width)
    min_full = full_face_bar(human, max(short, seen_short), cfg)
    weaker = not _is_face(full, short, -1.0, min_full, cfg)
    mesh = -1.0
    if weaker and max(full, short) >= cfg.min_face_mesh:
        mesh = float(detectors.landmarks(view))
    return full, short, mesh, _is_face(full, short, mesh, min_full, cfg)


def _is_face(full: float, short: float, mesh: float, min_full: float, cfg: PrepareConfig) -> bool:
    return full >= min_full or short >= cfg.min_face_short or mesh == 1


# Cues that count only on a subject whose colour/shape score is at least a threshold of its
# own (the PrepareConfig field named here): the pose solution, the pose landmark model, the far
# view and a pictogram's round head are also sure of animals and objects, mostly on lower
# scores. measure() does not look for a cue that could not count; is_human() (prepare_decide)
# applies the same gates
GATED_CUES = {
    "far_face": "far_face_human",
    "pose": "pose_human",
    "figure": "figure_human",
    "head": "head_human",
}


def can_count(cue: str, human: float, cfg: PrepareConfig) -> bool:
    """Whether this GATED_CUES cue can make a subject of this colour/shape score human-like."""
    return human >= getattr(cfg, GATED_CUES[cue])


def colour_alone(human: float, body_cut: float, cfg: PrepareConfig) -> bool:
    """Whether the colour/shape score vouches for a human without MediaPipe: only a high one,
    and only for a bust cut by the bottom edge. Drawn busts whose small head MediaPipe misses
    are common; a floating subject scoring high is as often an orange animal or a brown
    object, and there a face or a pose must decide (measured on Noto emoji art)."""
    return human >= cfg.human_alone and body_cut >= cfg.alone_min_cut


def measure(
    rgb: np.ndarray, white: np.ndarray, mask: np.ndarray, human: float, body_cut: float,
    cfg: PrepareConfig,
) -> Cues:  # fmt: skip
    """Run the detectors this picture needs (see PrepareConfig for the thresholds).

    Faces, view after view, unless the colour/shape cues are decisive alone, stopping at the
    first face: one over the detectors' thresholds, or a weaker one (min_face_mesh) on which the
    face mesh places its landmarks, as it does on drawn people and rarely on animals. When no
    view shows one, the far view is looked at once on a subject of human colours and shape
    (far_face_human; see FAR_MARGIN). Pose when no face was found on a subject of human-ish
    colours and shape (pose_human), or when the subject touches the bottom edge a little
    (0 < body_cut < pose_max_cut: a standing figure or a bust, which visible knees tell).
    When no face was found on a subject of human-ish colours and shape (head_human), the round
    head of a pictogram in its silhouette (head, headshape.py: no detector, but only needed
    there). Last, when no face was found on a subject of human colours and shape
    (figure_human), the pose landmark model alone on the subject (figure, see FIGURE_GRAPH).
    """
    cues = Cues()
    if mask.sum() < 16:
        return cues
    decided = colour_alone(human, body_cut, cfg)
    extent_open = 0 < body_cut < cfg.pose_max_cut
    if decided and not extent_open:
        return cues
    detectors = _detectors()
    whole = _fit(rgb)  # shrunk once: the faces' first view and the pose's only one
    face_found = False
    if not decided:
        cues.face = cues.face_short = 0.0
        toned = human >= TONED_HUMAN
        for view, subject_width in _views(whole, white, mask, toned):
            full, short, mesh, face_found = _look(
                detectors, view, subject_width, cfg, human, cues.face_short
            )
            cues.face, cues.face_short = max(cues.face, full), max(cues.face_short, short)
            cues.mesh = max(cues.mesh, mesh)
            if face_found:
                break
        # counted apart and decided with the colour/shape score: not looked at where that
        # score could not let it count
        if not face_found and can_count("far_face", human, cfg):
            far = _subject_view(white, mask, FAR_MARGIN)
            views = itertools.chain([far], _painted(*far, toned))
            cues.far_face = float(any(_look(detectors, *v, cfg)[3] for v in views))
    open_question = not (decided or face_found)  # neither colour alone nor a face vouched
    # the silhouette's head (a faceless pictogram) counts only on human-ish colours and shape
    if open_question and can_count("head", human, cfg):
        cues.head = pictogram_head(mask)
    # a pose counts only on human-ish colours and shape (pose_human); the knees tell a
    # bust from a standing figure on any subject
    if extent_open or (open_question and can_count("pose", human, cfg)):
        cues.pose, cues.knee = detectors.body(whole)
    # a whole figure drawn without a face: asked only on a subject whose colours and shape could
    # be a person's (figure_human)
    if open_question and can_count("figure", human, cfg):
        cues.figure = detectors.presence(_subject_view(white, mask, FIGURE_MARGIN)[0])
    return cues


def settings(cfg: PrepareConfig) -> list:
    """What the cached analysis depends on besides the pipeline: the method, and for MediaPipe
    the thresholds that decide which detectors run (a changed one re-runs them)."""
    if method(cfg) != MEDIAPIPE:
        return [COLOUR]
    gates = [cfg.human_alone, cfg.alone_min_cut, cfg.min_face, cfg.min_face_short]
    gates += [cfg.unsure_face, cfg.unsure_face_human, cfg.min_face_mesh, cfg.pose_max_cut]
    gates += [getattr(cfg, field) for field in GATED_CUES.values()]
    return [MEDIAPIPE, CUES_VERSION, *gates]
