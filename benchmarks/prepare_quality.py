"""Quality of `heroforge prepare` against the synthetic ground truth: JSON lines.

Expected outcome per picture: a labelled near-duplicate copy -> duplicate (one decision per
group of copies, whatever the copy's own reason would be); photographic -> too_realistic;
cluttered background -> not_separable; robot/insect/animal/object -> not_human; otherwise a
hero with its true body extent. Each reason's line also has its F1 by the labels alone
(copies expected to get their own reason, as before 2026-12-06's fifth session).
Prints per-reason precision/recall/F1, upper/full accuracy, mask IoU of kept pictures
(at analysis size), whether kept outputs have a pure white background, and kept-set precision.
Reasons are scored on the pictures big enough to judge: those excluded as too_small (the
subject would need more than prepare.max_upscale enlargement) are counted separately.

Usage: python benchmarks/prepare_quality.py [--count 500] [--seed 77] [--workers 0]
       [--cues mediapipe|colour]
(use a seed that was not used while tuning thresholds; `--cues colour` measures prepare without
MediaPipe's face and pose cues, as on a machine without mediapipe)
"""

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from heroforge.config import load_config
from heroforge.data.ingest import decode_image
from heroforge.data.prepare import _work_size, prepare
from heroforge.data.segment import segment
from heroforge.data.synth import synthesize

REASONS = ("too_realistic", "not_separable", "not_human")


def expected_reason(label: dict) -> str | None:
    if label["kind"] == "photo":
        return "too_realistic"
    if label["background"] == "cluttered":
        return "not_separable"
    if not label["human_like"]:
        return "not_human"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--seed", type=int, default=77)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--cues", choices=("mediapipe", "colour"), default="mediapipe")
    args = parser.parse_args()
    cfg = dataclasses.replace(load_config("superheroes-512").prepare, human_cues=args.cues)
    with tempfile.TemporaryDirectory() as tmp:
        synth, out = Path(tmp) / "synth", Path(tmp) / "prepared"
        labels = {lb["file"]: lb for lb in synthesize(synth, args.count, seed=args.seed)}
        start = time.perf_counter()
        summary = prepare(synth / "raw", out, cfg, workers=args.workers)
        seconds = time.perf_counter() - start
        rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
        report(rows, labels, synth, out, args, seconds, summary)


def _f1(rows: list[dict], truth: dict[str, str | None], reason: str) -> dict:
    """Precision, recall and F1 of one exclusion reason, truth naming each source's right one."""
    tp = sum(r.get("reason") == reason and truth[r["source"]] == reason for r in rows)
    predicted = sum(r.get("reason") == reason for r in rows)
    actual = sum(truth[r["source"]] == reason for r in rows)
    p, rc = tp / max(1, predicted), tp / max(1, actual)
    f1 = 2 * p * rc / max(1e-9, p + rc)
    return {"reason": reason, "precision": round(p, 3), "recall": round(rc, 3), "f1": round(f1, 3)}


def _kept_quality(kept: list[dict], labels: dict, synth: Path, out: Path) -> dict:
    """Mask IoU at analysis size, and whether the top corners of outputs are pure white."""
    ious, white = [], []
    for r in kept:
        decoded = decode_image((synth / "raw" / r["source"]).read_bytes(), r["source"])
        rgb, alpha, _ = _work_size(decoded.rgb, decoded.alpha)
        mask_img = Image.open(synth / labels[r["source"]]["mask"]).resize(rgb.shape[1::-1])
        truth = np.asarray(mask_img) > 127
        mask = segment(rgb, alpha).mask
        ious.append((mask & truth).sum() / max(1, (mask | truth).sum()))
        pic = np.asarray(Image.open(out / r["output"]))
        white.append(bool((pic[:3, :3] == 255).all() and (pic[:3, -3:] == 255).all()))
    return {
        "mean_iou_kept": round(float(np.mean(ious)), 3) if ious else None,
        "white_top_corners": round(float(np.mean(white)), 3) if white else None,
    }


def report(rows, labels, synth, out, args, seconds, summary) -> None:
    base = {"benchmark": "prepare_quality", "seed": args.seed, "count": args.count}
    judged = [r for r in rows if r.get("reason") != "too_small"]
    alone = {r["source"]: expected_reason(labels[r["source"]]) for r in rows}
    truth = {s: "duplicate" if labels[s]["duplicate_of"] else want for s, want in alone.items()}
    for reason in REASONS:
        line = {**base, **_f1(judged, truth, reason), "too_small": len(rows) - len(judged)}
        print(json.dumps(line | {"f1_by_labels_alone": _f1(judged, alone, reason)["f1"]}))
    heroes = [r for r in rows if expected_reason(labels[r["source"]]) is None and "body" in r]
    body_ok = float(np.mean([r["body"] == labels[r["source"]]["body"] for r in heroes]))
    print(json.dumps({**base, "upper_full_accuracy": round(body_ok, 3), "n": len(heroes)}))
    kept = [r for r in rows if r["decision"] == "keep"]
    good = [
        r
        for r in kept
        if expected_reason(labels[r["source"]]) is None and labels[r["source"]]["body"] == "upper"
    ]
    precision = round(len(good) / max(1, len(kept)), 3)
    quality = _kept_quality(kept, labels, synth, out)
    print(json.dumps({**base, "kept": len(kept), "kept_precision": precision, **quality}))
    speed = {"seconds": round(seconds, 1), "images_per_s": round(args.count / seconds, 2)}
    workers = args.workers or os.cpu_count()
    print(json.dumps({**base, **speed, "workers": workers, "summary": dataclasses.asdict(summary)}))


if __name__ == "__main__":
    main()
