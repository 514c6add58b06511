"""Quality of `heroforge prepare` on real drawn art (Noto emoji + real photos): JSON lines.

The set is built once by benchmarks/realart_build.py (see its docstring; it lives outside the
repository, by default in /work/cache/realart/FAMILY). This runs prepare with the
superheroes-512 preset (--keep both by default) on its raw/ folder and prints the lines of
benchmarks/prepare_quality.py
(per-reason precision/recall/F1 with the same expected-reason rule, except that a copy's
right outcome is "duplicate" as in every other line here; upper/full accuracy on
human-like pictures, kept-set precision, mean IoU of kept masks, images/s; the kept line also
has kept_recall: the share of the pictures that belong in the set that got there), then lines
that say where it goes wrong:

- "too_small": precision/recall of too_small against the truth mask (subject needing more than
  prepare.max_upscale enlargement), what became of the near-duplicates and recolours, and how
  many of prepare's duplicate calls were right ("duplicate_calls");
- "same_art_rule": keep/exclude figures and duplicate calls scored with the same-art rule and by
  the labels alone, and how many pictures share their art with another ("shared_art"). Some
  families draw several codepoints identically (Noto v1's "man" and "person" runners): without
  the background those pictures are the same picture rescaled, so a picture called a duplicate
  of a kept picture of the same art (the labels' "art") is right, as keeping it would be, and
  so is one that should be excluded called a duplicate of any picture of its art (two crops of
  one photograph are the same art too: the same picture re-cropped). Every other line is
  scored with the rule;
- "by": outcome per kind/body, figure (head/bust/full), placement, background and format: the
  share that got the expected outcome (the expected reason; "keep" for upper-body heroes,
  "full_body" for full-body ones, "duplicate" for copies of kept ones) and the outcomes it got,
  with the mean mask IoU of all
  drawn pictures (not only the kept ones) so that segmentation and scoring can be told apart,
  and of the kept ones (the headline figure's share of each background, placement, ...);
- "worst_groups": the emoji bases with the lowest share of expected outcomes.

With --sheets DIR it also writes one contact sheet per confusion (expected -> got) of
prepare's own thumbnails (the found subject outlined in magenta), captioned with the emoji
group and its scores, plus failures.jsonl with every wrong row.

Usage: python benchmarks/prepare_realart.py [--data /work/cache/realart] [--workers 0]
       [--out DIR (keep prepare's output and cache; default a temporary folder)] [--sheets DIR]
       [--cues mediapipe|colour (colour: without MediaPipe's face and pose cues)]
       [--rescore (score the manifest already in --out; prepare does not run)]
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from heroforge.config import PrepareConfig, load_config
from heroforge.data.ingest import decode_image
from heroforge.data.prepare import _work_size, prepare
from heroforge.data.segment import segment
from heroforge.data.sheet import contact_sheet
from prepare_quality import REASONS, _f1, _kept_quality, expected_reason  # sibling script

BENCHMARK = "prepare_realart"


def too_small_truth(label: dict, cfg: PrepareConfig) -> bool:
    """Whether the true subject needs more enlargement than allowed, framed as prepare frames
    it (longest side of its box plus the margin on both sides)."""
    x0, y0, x1, y1 = label["bbox"]
    if x1 <= x0 or y1 <= y0:  # photographs have no truth mask
        return False
    side = max(x1 - x0, y1 - y0) / (1 - 2 * cfg.margin)
    return cfg.size / side > cfg.max_upscale


def expected_outcome(label: dict, cfg: PrepareConfig) -> str:
    """What prepare should write in the manifest: the exclusion reason, or "keep".

    A copy goes as a duplicate whatever its original's fate: one decision per group of
    copies, the biggest picture's (data/prepare_decide.py)."""
    if label["duplicate_of"]:
        return "duplicate"
    if too_small_truth(label, cfg):
        return "too_small"
    reason = expected_reason(label)
    if reason:
        return reason
    if label["body"] != cfg.keep and cfg.keep != "both":
        return f"{label['body']}_body"
    return "keep"


def outcome(row: dict) -> str:
    return row.get("reason") or "keep"


def same_art_duplicates(rows: list[dict], labels: dict, cfg: PrepareConfig) -> set[str]:
    """Pictures prepare called a duplicate of a picture of the same art (the labels' "art": one
    drawing under two codepoints, see realart_build.py). Without the background they are the
    same picture rescaled, a duplicate by prepare's own definition. A picture that belongs in
    the set counts only as the duplicate of a kept one (else the drawing is lost to the set);
    one that should be excluded is out either way. Two crops of one photograph count as the
    same art: each is 65-100% of it per side (realart_build.photo), the same picture
    re-cropped."""
    kept = {r["source"] for r in rows if r["decision"] == "keep"}
    found = set()
    for r in rows:
        twin = r.get("duplicate_of")
        if outcome(r) != "duplicate" or twin is None:
            continue
        label = labels[r["source"]]
        if _art(label) is None or _art(label) != _art(labels[twin]):
            continue
        if twin in kept or expected_outcome(label, cfg) != "keep":
            found.add(r["source"])
    return found


def _art(label: dict) -> str | None:
    """The drawing a picture shows, or for a photograph the photograph it was cropped from."""
    return label.get("group") if label["kind"] == "photo" else label.get("art")


def expectations(rows: list[dict], labels: dict, cfg: PrepareConfig, same_art: bool) -> dict:
    """Source -> the outcome that counts as right. With same_art, a picture may also go as a
    duplicate of a picture of the same art (see same_art_duplicates): either is right."""
    accepted = same_art_duplicates(rows, labels, cfg) if same_art else set()
    return {
        r["source"]: "duplicate"
        if r["source"] in accepted
        else expected_outcome(labels[r["source"]], cfg)
        for r in rows
    }


def shared_art(labels: dict) -> dict:
    """How many pictures show the same art as another picture of the set (the labelled
    near-duplicate copies left out: they share their original's art by design)."""
    arts = Counter(
        lb.get("art") for lb in labels.values() if lb.get("art") and not lb["duplicate_of"]
    )
    shared = [n for n in arts.values() if n > 1]
    return {"pictures": sum(shared), "groups": len(shared)}


def _duplicate_calls(rows: list[dict], expected: dict) -> dict:
    """Pictures prepare excluded as duplicates, and how many of those calls were right."""
    called = [r["source"] for r in rows if outcome(r) == "duplicate"]
    right = sum(expected[source] == "duplicate" for source in called)
    return {"n": len(called), "right": right, "wrong": len(called) - right}


def mask_iou(data: Path, label: dict) -> float:
    """IoU of prepare's mask with the truth, at analysis size (as prepare_quality measures)."""
    decoded = decode_image((data / "raw" / label["file"]).read_bytes(), label["file"])
    rgb, alpha, _ = _work_size(decoded.rgb, decoded.alpha)
    truth = np.asarray(Image.open(data / label["mask"]).resize(rgb.shape[1::-1])) > 127
    mask = segment(rgb, alpha).mask
    return float((mask & truth).sum() / max(1, (mask | truth).sum()))


def _keep_f1(rows: list[dict], expected: dict) -> dict:
    """Precision, recall and F1 of the keep decision: kept pictures against those that belong
    in the set (the figure a person checking the prepared folder sees first)."""
    wanted = {r["source"] for r in rows if expected[r["source"]] == "keep"}
    kept = {r["source"] for r in rows if r["decision"] == "keep"}
    p, rc = len(wanted & kept) / max(1, len(kept)), len(wanted & kept) / max(1, len(wanted))
    f1 = 2 * p * rc / max(1e-9, p + rc)
    return {"reason": "keep", "precision": round(p, 3), "recall": round(rc, 3), "f1": round(f1, 3)}


def _breakdown(
    rows: list[dict], labels: dict, expected: dict, ious: dict[str, float], key: str
) -> list[dict]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        lb = labels[r["source"]]
        value = f"{lb['kind']}/{lb['body']}" if key == "kind/body" else lb.get(key)
        groups[str(value)].append(r)
    lines = []
    for value, members in sorted(groups.items()):
        ok = [outcome(r) == expected[r["source"]] for r in members]
        got = Counter(outcome(r) for r in members)
        member_ious = [ious[r["source"]] for r in members if r["source"] in ious]
        kept_ious = [
            ious[r["source"]] for r in members if r["source"] in ious and r["decision"] == "keep"
        ]
        lines.append(
            {
                "by": key,
                "value": value,
                "n": len(members),
                "expected_share": round(float(np.mean(ok)), 3),
                "outcomes": dict(got.most_common()),
                "mean_iou": round(float(np.mean(member_ious)), 3) if member_ious else None,
                # the headline mask IoU is of kept pictures: where it is lost, by this key
                "kept": len(kept_ious),
                "mean_iou_kept": round(float(np.mean(kept_ious)), 3) if kept_ious else None,
            }
        )
    return lines


def _worst_groups(rows: list[dict], labels: dict, expected: dict, top: int = 15) -> dict:
    groups: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        groups[labels[r["source"]]["group"]].append(outcome(r) == expected[r["source"]])
    scored = sorted((float(np.mean(v)), -len(v), g) for g, v in groups.items())
    return {g: f"{round(share * -n)}/{-n}" for share, n, g in scored[:top]}


def _sheets(rows: list[dict], labels: dict, expected: dict, out: Path, sheets: Path) -> None:
    """A contact sheet per confusion (expected -> got), and failures.jsonl."""
    sheets.mkdir(parents=True, exist_ok=True)
    for old in sheets.glob("*.png"):
        old.unlink()
    cells: dict[tuple[str, str], list[dict]] = defaultdict(list)
    failures = []
    for r in rows:
        want, got = expected[r["source"]], outcome(r)
        if want != got:
            cells[(want, got)].append(r)
            failures.append(
                {"expected": want, "got": got, **labels[r["source"]], "scores": r.get("scores")}
            )
    (sheets / "failures.jsonl").write_text(
        "".join(json.dumps(f) + "\n" for f in failures), encoding="utf-8"
    )
    for (want, got), members in cells.items():
        items = []
        for r in members[:64]:
            thumb = out / ".cache" / "thumbs" / f"{r.get('sha256')}.jpg"
            if not thumb.exists():
                continue
            with Image.open(thumb) as img:
                img.load()
            lb, s = labels[r["source"]], r["scores"]
            caption = f"{lb['group'].split(' ', 1)[-1][:11]} h{s['human']:.2f} c{s['body_cut']:.2f}"
            items.append((img, caption))
        if items:
            buf = io.BytesIO()
            contact_sheet(items, columns=8).save(buf, "PNG")
            (sheets / f"{want}__as__{got}.png").write_bytes(buf.getvalue())


def _same_art_line(rows: list[dict], labels: dict, cfg: PrepareConfig) -> dict:
    """The figures the same-art rule moves, scored with it and by the labels alone, and how many
    pictures it turned from a missed keep into a right duplicate ("accepted")."""
    figures, expected = {}, {}
    for name, same_art in (("with", True), ("without", False)):
        expected[name] = expectations(rows, labels, cfg, same_art)
        keep = {k: v for k, v in _keep_f1(rows, expected[name]).items() if k != "reason"}
        figures[name] = keep | {"duplicate_calls": _duplicate_calls(rows, expected[name])}
    accepted = sum(expected["with"][r["source"]] != expected["without"][r["source"]] for r in rows)
    return {"same_art_rule": figures, "shared_art": shared_art(labels) | {"accepted": accepted}}


def report(
    rows: list[dict],
    labels: dict,
    data: Path,
    out: Path,
    cfg: PrepareConfig,
    expected: dict,
    speed: dict | None,
) -> list[dict]:
    """All the benchmark's lines, in order, scored against `expected` (see expectations);
    speed (seconds, workers, summary) goes last when prepare ran."""
    base = {"benchmark": BENCHMARK, "data": data.name, "count": len(rows)}
    lines = []
    judged = [r for r in rows if r.get("reason") != "too_small"]
    small = len(rows) - len(judged)
    for reason in REASONS:
        # a labelled copy's right outcome is "duplicate" (whatever its original's reason)
        lines.append({**base, **_f1(judged, expected, reason), "too_small": small})
    lines.append({**base, **_keep_f1(rows, expected)})
    heroes = [r for r in rows if expected_reason(labels[r["source"]]) is None and "body" in r]
    body_ok = float(np.mean([r["body"] == labels[r["source"]]["body"] for r in heroes]))
    kept_heroes = [r for r in heroes if r["decision"] == "keep"]
    kept_ok = [r["body"] == labels[r["source"]]["body"] for r in kept_heroes]
    per_body = {}  # recall of each extent: both failure directions show separately
    for body in ("upper", "full"):
        of_body = [r["body"] == body for r in heroes if labels[r["source"]]["body"] == body]
        per_body[body] = round(float(np.mean(of_body)), 3) if of_body else None
    lines.append(
        {**base, "upper_full_accuracy": round(body_ok, 3), "n": len(heroes), "recall": per_body}
        | {"kept_accuracy": round(float(np.mean(kept_ok)), 3) if kept_ok else None}
    )
    kept = [r for r in rows if r["decision"] == "keep"]
    good = [
        r
        for r in kept
        if expected_reason(labels[r["source"]]) is None
        and cfg.keep in ("both", labels[r["source"]]["body"])
    ]
    quality = _kept_quality(kept, labels, data, out)
    # Not in prepare_quality: how many of the pictures that belong in the set made it there
    wanted = sum(expected[r["source"]] == "keep" for r in rows)
    recall = round(sum(expected[r["source"]] == "keep" for r in kept) / max(1, wanted), 3)
    lines.append(
        {**base, "kept": len(kept), "kept_precision": round(len(good) / max(1, len(kept)), 3)}
        | quality
        | {"kept_recall": recall, "wanted": wanted}
    )
    small_truth = {r["source"] for r in rows if too_small_truth(labels[r["source"]], cfg)}
    small_pred = {r["source"] for r in rows if r.get("reason") == "too_small"}
    dups = [r for r in rows if labels[r["source"]]["duplicate_of"]]
    recolours = [r for r in rows if labels[r["source"]].get("recolour_of")]
    lines.append(
        {
            **base,
            "too_small": {
                "precision": round(len(small_truth & small_pred) / max(1, len(small_pred)), 3),
                "recall": round(len(small_truth & small_pred) / max(1, len(small_truth)), 3),
                "n": len(small_truth),
            },
            "near_duplicates": {"n": len(dups), "outcomes": dict(Counter(map(outcome, dups)))},
            # another variant of a drawn hero (skin tone, gender, hair): never a duplicate, unless
            # the family draws it like a kept picture (then "duplicate" is right, not "wrong")
            "recolours": {
                "n": len(recolours),
                "outcomes": dict(Counter(map(outcome, recolours))),
                "wrong_duplicates": _duplicate_calls(recolours, expected)["wrong"],
            },
            "duplicate_calls": _duplicate_calls(rows, expected),
        }
    )
    lines.append({**base, **_same_art_line(rows, labels, cfg)})
    drawn = [r for r in rows if labels[r["source"]]["kind"] != "photo" and "sha256" in r]
    ious = {r["source"]: mask_iou(data, labels[r["source"]]) for r in drawn}
    for key in ("kind/body", "figure", "placement", "background", "format"):
        lines.extend({**base, **line} for line in _breakdown(rows, labels, expected, ious, key))
    lines.append({**base, "worst_groups": _worst_groups(rows, labels, expected)})
    if speed:
        per_s = round(len(rows) / speed["seconds"], 2)
        lines.append(
            {**base, **speed, "seconds": round(speed["seconds"], 1), "images_per_s": per_s}
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    # the families realart_build.py makes; the last five check what was chosen on the first
    # (fxemoji wholly held out; see realart_build.FAMILIES)
    families = ("noto", "blob", "fluent", "twemoji", "openmoji", "emojione", "streamline")
    families += ("fxemoji",)
    parser.add_argument("--family", choices=families, default="noto")
    parser.add_argument(
        "--data", type=Path, help="the built set (default /work/cache/realart/FAMILY)"
    )
    parser.add_argument("--keep", choices=("upper", "full", "both"), default="both")
    parser.add_argument("--out", type=Path, help="prepare's output folder (default: temporary)")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--sheets", type=Path, help="write failure contact sheets here")
    parser.add_argument("--cues", choices=("mediapipe", "colour"), default="mediapipe")
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="score the manifest already in --out instead of running prepare (no speed line)",
    )
    args = parser.parse_args()
    data = args.data or Path("/work/cache/realart") / args.family
    if not (data / "labels.json").exists():
        raise SystemExit(f"no {data / 'labels.json'}: build it with realart_build.py first")
    if args.rescore and not (args.out and (args.out / "manifest.jsonl").exists()):
        raise SystemExit("--rescore needs --out, a folder prepare wrote (with manifest.jsonl)")
    index = json.loads((data / "labels.json").read_text(encoding="utf-8"))
    labels = {lb["file"]: lb for lb in index["images"]}
    if any("art" not in lb for lb in labels.values()):
        raise SystemExit(f"{data} has no art labels: realart_build.py --annotate --out {data}")
    prepare_cfg = load_config("superheroes-512").prepare
    cfg = dataclasses.replace(prepare_cfg, keep=args.keep, human_cues=args.cues)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "prepared"
        speed = None
        if not args.rescore:
            start = time.perf_counter()
            summary = prepare(data / "raw", out, cfg, workers=args.workers)
            speed = {
                "seconds": time.perf_counter() - start,
                "workers": args.workers or os.cpu_count(),
                "summary": dataclasses.asdict(summary),
            }
        rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
        expected = expectations(rows, labels, cfg, same_art=True)
        for line in report(rows, labels, data, out, cfg, expected, speed):
            print(json.dumps(line))
        if args.sheets:
            _sheets(rows, labels, expected, out, args.sheets)


if __name__ == "__main__":
    main()
