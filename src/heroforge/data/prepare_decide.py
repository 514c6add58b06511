"""The decisions of `heroforge prepare`, made over the cached analysis of every picture: its
exclusion reason and body extent from the scores and thresholds, a person's overrides, --keep,
and near-duplicates. Nothing here reads pixels: changing a threshold re-decides in an instant.
"""

from __future__ import annotations

from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from heroforge.config import PrepareConfig
from heroforge.data import dedup, humancues
from heroforge.data.inspect import Scores
from heroforge.data.prepare_results import PictureRecord


def is_human(scores: Scores, cfg: PrepareConfig, cues: str) -> bool:
    """With MediaPipe: a face (either detector, or a weaker one the face mesh confirms, or a
    weaker close-up one on a subject of very human colours and shape, or one found only with
    the subject smaller in the view on a subject of human colours and shape), a pose on a
    subject of human-ish colours and shape, a person the pose landmark model is sure of on a
    subject of human colours and shape (a figure drawn without a face), or a colour/shape score
    high enough alone for a bust. Colour cues only: the colour/shape score against min_human."""
    if cues != humancues.MEDIAPIPE:
        return scores.human >= cfg.min_human
    return (
        humancues.colour_alone(scores.human, scores.body_cut, cfg)
        or scores.face >= humancues.full_face_bar(scores.human, scores.face_short, cfg)
        or scores.face_short >= cfg.min_face_short
        or scores.mesh >= 1  # measured only on faces of at least min_face_mesh
        or (scores.face_short >= cfg.weak_face_short and scores.human >= cfg.weak_face_human)
        or (scores.far_face >= 1 and humancues.can_count("far_face", scores.human, cfg))
        or (scores.pose >= cfg.min_pose and humancues.can_count("pose", scores.human, cfg))
        or (scores.figure >= cfg.min_figure and humancues.can_count("figure", scores.human, cfg))
        or (scores.head > 0 and humancues.can_count("head", scores.human, cfg))
    )


def is_separable(scores: Scores, cfg: PrepareConfig) -> bool:
    """Whether the subject stands out from its background well enough for its cut-out to be
    trusted (else: "not_separable", and duplicates are judged by the whole square)."""
    return scores.separability >= cfg.min_separability


def decide(
    scores: Scores, cfg: PrepareConfig, upscale: float | None, cues: str = humancues.COLOUR
) -> tuple[str | None, str]:
    """(outlier reason or None, body extent). The first failing check names the reason;
    upscale is the enlargement the framed subject needed (None: no subject found); cues is
    how human-likeness was measured (the record's "human_cues")."""
    compact = (scores.fill >= cfg.upper_min_fill and scores.tall <= cfg.upper_max_tall) or (
        scores.fill >= cfg.upper_tall_min_fill and scores.tall <= cfg.upper_tall_max_tall
    )
    # A floating bust ends on a straight line as wide as a good part of its height, however
    # tall its hat or hair; a whole figure ends on its feet
    based = scores.base >= cfg.upper_min_base
    body = "upper" if scores.body_cut >= cfg.upper_min_cut or compact or based else "full"
    # A slender subject touching the bottom edge along a short line stands on it
    if scores.body_cut > 0 and scores.base < cfg.feet_max_base and scores.tall >= cfg.feet_min_tall:
        body = "full"
    # Feet on the bottom edge look like a bust cut by it; visible knees tell them apart
    # (knee is -1 where pose was not run)
    if 0 < scores.body_cut < cfg.pose_max_cut and scores.knee >= cfg.min_knee:
        body = "full"
    if upscale is None:
        return "not_separable", body
    if upscale > cfg.max_upscale:  # also: too few pixels to judge texture and shape reliably
        return "too_small", body
    separable = is_separable(scores, cfg)
    # A busy scene left inside a failed mask looks "realistic" too (many colours); there only
    # a clearly photographic picture is called too_realistic, the rest not_separable.
    clearly = min(1.0, cfg.max_realism + 0.25)
    if scores.realism > (cfg.max_realism if separable else clearly):
        return "too_realistic", body
    if not separable:
        return "not_separable", body
    if not is_human(scores, cfg, cues):
        return "not_human", body
    return None, body


def _output_name(source: str, sha: str, taken: set[str]) -> str:
    stem = Path(source).with_suffix("").as_posix().replace("/", "__")
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)[:120] or "picture"
    name = f"{stem}.png"
    if name in taken:
        name = f"{stem}-{sha[:8]}.png"
    taken.add(name)
    return name


def finalise(
    records: list[PictureRecord],
    overrides: dict[str, str],
    cfg: PrepareConfig,
    pool: Executor | None = None,
    parts: int = 1,
) -> list[dict]:
    """Final decision per record: overrides first, then the automatic reason, then --keep,
    then near-duplicates (see _mark_duplicates; compared in `parts` batches on pool)."""
    rows, taken = [], set[str]()
    for rec in sorted(records, key=lambda r: r["source"]):
        row: dict[str, Any] = dict(rec)
        action = overrides.get(rec["source"])
        row["override"] = action
        if rec["decision"] == "error":
            rows.append(row)
            continue
        cues = rec.get("human_cues", humancues.COLOUR)
        reason, row["body"] = decide(Scores(**rec["scores"]), cfg, rec["upscale"], cues)
        if action in ("upper", "full"):
            row["body"] = action
        wanted = cfg.keep == "both" or row["body"] == cfg.keep
        if action == "include" and "hash" in rec:
            row["decision"], row["reason"] = "keep", None
        elif action == "exclude":
            row["decision"], row["reason"] = "exclude", "override"
        elif reason or not wanted:
            row["decision"], row["reason"] = "exclude", reason or f"{row['body']}_body"
        else:
            row["decision"], row["reason"] = "keep", None
        rows.append(row)
    _mark_duplicates(rows, cfg, pool, parts)
    for row in rows:
        if row["decision"] == "keep":
            row["output"] = "images/" + _output_name(row["source"], row["sha256"], taken)
    return rows


def _heading_order(row: dict) -> tuple[int, bool]:
    """Which picture of a group of copies heads it (sorts first): the biggest, and of two as
    big the one not saved as a JPEG (an original beside its re-encoded copy)."""
    return -row["size"][0] * row["size"][1], row["source"].lower().endswith((".jpg", ".jpeg"))


def _mark_duplicates(
    rows: list[dict], cfg: PrepareConfig, pool: Executor | None, parts: int
) -> None:
    """One decision per group of copies: its head's (_heading_order). Every picture with a
    framed view takes part, kept or not: whether a picture is found human or separable can
    change when it is re-encoded or rescaled, and a copy kept beside its excluded original
    would slip into the set as a picture of its own. A copy goes as "duplicate" naming the
    picture it duplicates ("duplicate_of", with their colour distance in
    "duplicate_distance"), whatever it would have got alone. A person's include or exclude is
    a word about that picture: it is never called a duplicate, though it may head a group."""
    pictures = sorted((r for r in rows if "hash" in r), key=_heading_order)
    found = dedup.find_duplicates(
        [
            dedup.Picture(
                r["source"],
                r["hash"],
                r["whole_hash"],
                r["thumb"],
                r["context"],
                may_duplicate=r["override"] not in ("include", "exclude"),
                kept=r["decision"] == "keep",
                cut_clean=is_separable(Scores(**r["scores"]), cfg),
            )
            for r in pictures
        ],
        cfg.duplicate_bits,
        cfg.duplicate_distance,
        pool,
        parts,
    )
    for row in pictures:
        if row["source"] in found:
            row["decision"], row["reason"] = "exclude", "duplicate"
            row["duplicate_of"], row["duplicate_distance"] = found[row["source"]]
