"""How well `heroforge prepare` tells near-duplicates from recolours: JSON lines.

From the synthetic hero generator: per hero an original on a plain, gradient or textured
background; four true copies of it (re-encoded as JPEG 60-95; rescaled to 50-90% and JPEG;
re-cropped by 2-6% per side as PNG; all three with JPEG 60 and a 5% brightness change); and,
on the same background, the same figure recoloured (skin tone, hair, costume) and another
character in the same pose (every colour changed); a change that alters less than VISIBLE of
the picture is left out (nothing to see). Runs prepare (--keep both) on the lot and
prints:

- "copies": recall, the share of all true copies excluded as duplicates of their own hero
  (whatever became of the hero's original), and what the missed ones got instead; kept_out,
  the share of copies that do not reach the training set as a second picture of their hero
  (recall also counts copies excluded for a reason of their own, which are out either way);
- "recolours": the false-duplicate rate per kind of change (a pair is falsely called when
  either picture is excluded as a duplicate of the other's hero: of its original or a copy);
- "distances": quantiles of the colour distance (data/dedup.py, measured as prepare measures it
  against prepare.duplicate_distance: above that, a recolour's may be a lower bound) and hash
  bits between each picture and its hero's original, for choosing duplicate_distance and
  duplicate_bits.

Usage: python benchmarks/prepare_duplicates.py [--heroes 40] [--seed 5] [--workers 0]
       [--out DIR (keep the pictures and prepare's output and cache there: a rerun after a
       change to the decisions reanalyses nothing; default a temporary folder)]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from heroforge.config import load_config
from heroforge.data import dedup
from heroforge.data import synth_figures as figures
from heroforge.data import synth_scene as scene
from heroforge.data.prepare import prepare
from heroforge.data.synth import hero_picture

COPIES = ("jpeg", "rescaled", "cropped", "all")
CHANGES = ("skin", "hair", "costume", "same_pose")
VISIBLE = 0.001  # share of the picture a recolour must change to count as one


def _save(img: Image.Image, path: Path, quality: int | None = None) -> None:
    if quality is None:
        img.save(path.with_suffix(".png"))
    else:
        img.save(path.with_suffix(".jpg"), "JPEG", quality=quality)


def copy_of(img: Image.Image, how: str, rng: np.random.Generator) -> tuple[Image.Image, int | None]:
    """A true copy: (picture, JPEG quality or None for PNG)."""
    w, h = img.size
    if how in ("cropped", "all"):
        x0, y0, x1, y1 = rng.uniform(0.02, 0.06, 4)
        img = img.crop((round(x0 * w), round(y0 * h), round((1 - x1) * w), round((1 - y1) * h)))
    if how in ("rescaled", "all"):
        factor = rng.uniform(0.5, 0.9)
        img = img.resize((round(img.width * factor), round(img.height * factor)), Image.LANCZOS)
    if how == "all":
        img = ImageEnhance.Brightness(img).enhance(float(rng.choice([0.95, 1.05])))
        return img, 60
    if how == "cropped":
        return img, None
    return img, int(rng.integers(60, 96))


def recoloured(pal: dict, change: str, rng: np.random.Generator) -> dict:
    """The palette with one thing changed (or all of it: another character)."""
    if change == "skin":
        others = [t for t in figures.SKIN_TONES if t != pal["skin"]]
        return {**pal, "skin": others[int(rng.integers(len(others)))]}
    if change == "hair":
        others = [c for c in figures.HAIR if c != pal["hair"]]
        return {**pal, "hair": others[int(rng.integers(len(others)))]}
    fresh = figures.hero_palette(rng)
    if change == "costume":
        return {**pal, "suit": fresh["suit"], "second": fresh["second"]}
    return fresh


def _visible_change(a: Image.Image, b: Image.Image) -> bool:
    """Whether at least VISIBLE of the picture changed colour (by more than 24 levels): a hair
    colour on a hero whose hair hides under a mask changes a few pixels of a spike, the same
    picture to anyone (and to a GAN at 256 px)."""
    diff = np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).max(axis=2)
    return bool((diff > 24).mean() >= VISIBLE)


def build(folder: Path, heroes: int, seed: int) -> dict[str, tuple[int, str]]:
    """Write the pictures; returns {file: (hero, role)} (role "original", copy or change)."""
    truth: dict[str, tuple[int, str]] = {}
    for i in range(heroes):
        rng = np.random.default_rng([seed, i])
        body = "full" if i % 2 else "upper"
        size = (int(rng.integers(420, 700)), int(rng.integers(480, 760)))
        pal = figures.hero_palette(rng)
        kind = str(rng.choice(["plain", "gradient", "textured"]))
        bg = scene.background(rng, kind, size, [pal["suit"]])
        original = hero_picture(seed * 1000 + i, pal, body, size, 0.8, bg)
        _save(original, folder / f"h{i:03d}_original")
        truth[f"h{i:03d}_original.png"] = (i, "original")
        for how in COPIES:
            img, quality = copy_of(original, how, rng)
            name = f"h{i:03d}_copy_{how}"
            _save(img, folder / name, quality)
            truth[name + (".png" if quality is None else ".jpg")] = (i, how)
        for change in CHANGES:
            img = hero_picture(seed * 1000 + i, recoloured(pal, change, rng), body, size, 0.8, bg)
            if not _visible_change(original, img):
                continue  # a hair colour on a hero without hair, or only a few pixels of it
            _save(img, folder / f"h{i:03d}_{change}")
            truth[f"h{i:03d}_{change}.png"] = (i, change)
    return truth


def _quantiles(values: list[float]) -> dict:
    if not values:
        return {}
    q = np.quantile(values, [0, 0.05, 0.5, 0.95, 1])
    names = ("min", "p5", "median", "p95", "max")
    return dict(zip(names, (round(float(v), 4) for v in q), strict=True))


def report(
    rows: list[dict],
    truth: dict[str, tuple[int, str]],
    signatures: dict[str, str],
    base: dict,
    limit: float,
) -> list[dict]:
    by_name = {r["source"]: r for r in rows}
    originals = {hero: name for name, (hero, role) in truth.items() if role == "original"}

    def same_picture(hero: int) -> set[str]:  # the hero's original and its true copies
        return {n for n, (h, r) in truth.items() if h == hero and r not in CHANGES}

    copies = [n for n, (_, role) in truth.items() if role in COPIES]
    # found: the copy named as a duplicate of its picture, or the other way round (a copy as
    # big as its original may be the one that heads the group)
    found = {
        n: by_name[n].get("duplicate_of") in same_picture(truth[n][0])
        or any(by_name[t].get("duplicate_of") == n for t in same_picture(truth[n][0]))
        for n in copies
    }
    per_kind = {}
    for how in COPIES:
        of_kind = [found[n] for n in copies if truth[n][1] == how]
        per_kind[how] = round(float(np.mean(of_kind)), 3) if of_kind else None
    recall = round(float(np.mean(list(found.values()))), 3) if found else None
    # what the missed copies got instead (another reason: a classification that changed)
    missed = Counter(by_name[n].get("reason") or "keep" for n in copies if not found[n])
    # what the training set sees: a hero's picture kept more than once is a copy let in
    heroes = {h for h, _ in truth.values()}
    let_in = sum(
        max(0, sum(by_name[n]["decision"] == "keep" for n in same_picture(h)) - 1) for h in heroes
    )
    kept_out = round(1 - let_in / len(copies), 3) if copies else None
    copies_line = {
        "recall": recall,
        "kept_out": kept_out,
        "n": len(copies),
        "by_kind": per_kind,
        "missed": missed,
    }
    lines = [{**base, "copies": copies_line}]
    pairs: dict[str, list[bool]] = {c: [] for c in CHANGES}
    for name, (hero, change) in truth.items():
        if change not in CHANGES:
            continue
        # wrong: called a copy of its hero's picture, or that picture called a copy of it
        twins = same_picture(hero)
        wrong = by_name[name].get("duplicate_of") in twins or any(
            by_name[t].get("duplicate_of") == name for t in twins
        )
        pairs[change].append(bool(wrong))
    every = [w for ws in pairs.values() for w in ws]
    by_change = {c: round(float(np.mean(w)), 4) if w else None for c, w in pairs.items()}
    rate = round(float(np.mean(every)), 4) if every else None
    lines.append(
        {
            **base,
            "recolours": {"false_duplicate_rate": rate, "n": len(every), "by_change": by_change},
        }
    )
    for role in (*COPIES, *CHANGES):
        dists, bits = [], []
        for name, (hero, r) in truth.items():
            first = originals[hero]
            if r != role or first not in signatures or name not in signatures:
                continue
            dists.append(dedup.colour_distance(signatures[first], signatures[name], limit))
            pair = int(by_name[first]["hash"], 16) ^ int(by_name[name]["hash"], 16)
            bits.append(bin(pair).count("1"))
        lines.append(
            {**base, "distances": role, "colour": _quantiles(dists), "bits": _quantiles(bits)}
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--heroes", type=int, default=40)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    cfg = dataclasses.replace(load_config("superheroes-512").prepare, keep="both")
    base = {"benchmark": "prepare_duplicates", "seed": args.seed, "heroes": args.heroes}
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.out or Path(tmp)
        raw, out = folder / "raw", folder / "out"
        shutil.rmtree(raw, ignore_errors=True)  # the pictures are rebuilt, the cache kept
        raw.mkdir(parents=True)
        truth = build(raw, args.heroes, args.seed)
        prepare(raw, out, cfg, workers=args.workers)
        rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
        signatures = {}  # the colour signatures are in prepare's cache records
        for r in rows:
            for path in (out / ".cache" / "records").glob(f"{r.get('sha256')}-*.json"):
                record = json.loads(path.read_text())
                if "thumb" in record:
                    signatures[r["source"]] = record["thumb"]
    for line in report(rows, truth, signatures, base, cfg.duplicate_distance):
        print(json.dumps(line))


if __name__ == "__main__":
    main()
