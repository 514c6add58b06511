"""Contact sheets: many pictures as captioned thumbnails on one PNG, for a person to review."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont, ImageOps


def _on_checkerboard(img: Image.Image) -> Image.Image:
    """Transparent pictures on a grey checkerboard, so 'transparent' is visible as such."""
    if img.mode not in ("RGBA", "LA", "PA") and "transparency" not in img.info:
        return img.convert("RGB")
    board = Image.new("RGB", img.size, (205, 205, 205))
    draw = ImageDraw.Draw(board)
    step = max(4, min(img.size) // 16)
    for y in range(0, img.size[1], step):
        for x in range((y // step % 2) * step, img.size[0], 2 * step):
            draw.rectangle([x, y, x + step - 1, y + step - 1], fill=(245, 245, 245))
    board.paste(img.convert("RGBA"), mask=img.convert("RGBA"))
    return board


def contact_sheet(
    items: Sequence[tuple[Image.Image, str]],
    columns: int = 8,
    thumb: int = 160,
) -> Image.Image:
    """Lay out (picture, caption) pairs in a grid: each picture fitted into a thumb x thumb cell."""
    font = ImageFont.load_default()
    caption_h = 14
    rows = max(1, -(-len(items) // columns))
    cell_w, cell_h = thumb + 8, thumb + caption_h + 10
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), (40, 40, 44))
    draw = ImageDraw.Draw(sheet)
    for i, (img, caption) in enumerate(items):
        x, y = (i % columns) * cell_w + 4, (i // columns) * cell_h + 4
        small = ImageOps.contain(_on_checkerboard(img), (thumb, thumb), Image.Resampling.LANCZOS)
        sheet.paste(small, (x + (thumb - small.width) // 2, y + (thumb - small.height) // 2))
        draw.text((x, y + thumb + 3), caption[:30], fill=(230, 230, 230), font=font)
    return sheet
