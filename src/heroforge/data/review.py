"""review.html: the prepare manifest as a contact sheet, grouped by decision, for a person."""

from __future__ import annotations

import html
from pathlib import Path

from heroforge.fileio import atomic_write_text

STYLE = """
body { font: 13px sans-serif; background: #202024; color: #ddd; margin: 16px; }
h2 { border-bottom: 1px solid #555; padding-top: 12px; }
.grid { display: flex; flex-wrap: wrap; gap: 8px; }
.card { background: #2c2c32; padding: 6px; width: 330px; border-radius: 4px; }
.card img { width: 160px; height: 160px; object-fit: contain; background: #777; }
.name { font-weight: bold; word-break: break-all; }
.why { color: #f99; } .ok { color: #9f9; } code { color: #fc6; }
"""


def _group(row: dict) -> str:
    if row["decision"] == "keep":
        return "kept"
    if row["decision"] == "error":
        return f"skipped: {row['reason']}"
    return f"excluded: {row['reason']}"


def _card(row: dict, sha_of: dict[str, str]) -> str:
    """One picture; a duplicate also shows the prepared picture it duplicates, so that a wrong
    call is seen at a glance."""
    name = html.escape(row["source"])
    sha = row.get("sha256")
    pics = ""
    if sha and row["decision"] != "error":
        pics += f'<img src=".cache/thumbs/{sha}.jpg" alt="source">'
        if row.get("hash"):
            pics += f'<img src=".cache/framed/{sha}.png" alt="output">'
    twin = sha_of.get(row.get("duplicate_of") or "")
    if twin:
        twin_name = html.escape(row["duplicate_of"])
        pics += f'<img src=".cache/framed/{twin}.png" alt="duplicates {twin_name}">'
    scores = " ".join(f"{k} {v:.2f}" for k, v in (row.get("scores") or {}).items())
    why = html.escape(str(row.get("detail") or row.get("reason") or ""))
    flip = "exclude" if row["decision"] == "keep" else "include"
    tone = "ok" if row["decision"] == "keep" else "why"
    lines = [
        f'<div class="name">{name}</div>',
        f'<div class="{tone}">{row["decision"]} {why}</div>',
    ]
    if row.get("body"):
        lines.append(
            f"<div>body: {row['body']} · method: {html.escape(str(row.get('method')))}</div>"
        )
    if row.get("duplicate_of"):
        distance = row.get("duplicate_distance")
        close = "" if distance is None else f" (colour distance {distance:.3f})"
        lines.append(f"<div>near-duplicate of {html.escape(row['duplicate_of'])}{close}</div>")
    if scores:
        lines.append(f"<div>{scores}</div>")
    if row.get("override"):
        lines.append(f"<div>override: {html.escape(row['override'])}</div>")
    if row["decision"] != "error":
        lines.append(f"<div>to flip: <code>{name},{flip}</code></div>")
    return f'<div class="card">{pics}{"".join(lines)}</div>'


def write_review(out: Path, rows: list[dict]) -> Path:
    groups: dict[str, list[dict]] = {}
    sha_of = {row["source"]: row["sha256"] for row in rows if row.get("sha256")}
    for row in rows:
        groups.setdefault(_group(row), []).append(row)
    order = sorted(groups, key=lambda g: (g != "kept", g.startswith("skipped"), g))
    parts = [
        "<!doctype html><meta charset='utf-8'><title>heroforge review</title>",
        f"<style>{STYLE}</style><h1>prepare review</h1>",
        "<p>Left: the source with the found subject outlined; right: the prepared picture "
        "(and for a duplicate, the prepared picture it duplicates). "
        "Add a line <code>source,action</code> (include, exclude, upper, full) to "
        "<code>overrides.csv</code> and rerun <code>heroforge prepare</code>.</p>",
        "<p>" + " · ".join(f"{html.escape(g)}: {len(groups[g])}" for g in order) + "</p>",
    ]
    for g in order:
        parts.append(f"<h2>{html.escape(g)} ({len(groups[g])})</h2><div class='grid'>")
        parts.extend(_card(r, sha_of) for r in groups[g])
        parts.append("</div>")
    path = out / "review.html"
    atomic_write_text(path, "\n".join(parts))
    return path
