"""The bar chart ``vos eval`` writes beside its CSV files: J&F, J and F of every object, and the mean J&F.

Drawn with Pillow, which reading masks has already imported: importing and running matplotlib for one chart
took longer than scoring DAVIS 2016 dev (0.6 s of CPU against 0.03 s here).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from PIL import Image, ImageDraw, ImageFont

# (statistic, colour) of each bar of an object, left to right.
SERIES = (("J&F-Mean", (76, 114, 176)), ("J-Mean", (85, 168, 104)), ("F-Mean", (196, 78, 82)))
_SLOT = 50  # pixels per object
_PLOT_HEIGHT = 260
_MARGINS = (50, 34, 20)  # left (tick labels), top (title), right


def bar_chart(names: Sequence[str], scores: Sequence[Mapping[str, float]], mean: float, title: str) -> Image.Image:
    """An RGB image: for each of ``names``, the bars of its ``scores`` (fractions, one mapping per name, keyed
    by the statistics of :data:`SERIES`) on a 0-1 axis, names below at 60 degrees, a dashed line at ``mean``
    and a legend."""
    font, small = ImageFont.load_default(size=12), ImageFont.load_default(size=10)
    left, top, right = _MARGINS
    label = max((font.getlength(n) for n in names), default=0.0)
    x0 = left
    x1 = max(600 - right, left + _SLOT * len(names) + 40)
    y0, y1 = top, top + _PLOT_HEIGHT
    image = Image.new("RGB", (x1 + right, y1 + int(label * 0.87) + 24), "white")  # labels rise at 60 degrees
    draw = ImageDraw.Draw(image)

    def y(value: float) -> float:
        return y1 - min(max(value, 0.0), 1.0) * _PLOT_HEIGHT

    for tick in range(6):
        draw.line([(x0 - 4, y(tick / 5)), (x0, y(tick / 5))], fill="black")
        draw.text((x0 - 7, y(tick / 5)), f"{tick / 5:.1f}", font=font, fill="black", anchor="rm")
    slot = (x1 - x0) / max(len(names), 1)
    width = slot * 0.27
    for i, (name, row) in enumerate(zip(names, scores)):
        centre = x0 + slot * (i + 0.5)
        for k, (key, colour) in enumerate(SERIES):
            left_edge = centre + (k - 1.5) * width
            draw.rectangle([left_edge, y(row[key]), left_edge + width, y1], fill=colour)
        draw.line([(centre, y1), (centre, y1 + 4)], fill="black")
        text = Image.new("L", (int(font.getlength(name)) + 4, 16), 0)
        ImageDraw.Draw(text).text((0, 8), name, font=font, fill=255, anchor="lm")
        text = text.rotate(60, expand=True, resample=Image.Resampling.BICUBIC)
        image.paste((0, 0, 0), (int(centre - text.width + 6), y1 + 6), text)  # the name ends under its tick
    if math.isfinite(mean):  # no objects: no mean
        _dashed(draw, x0, x1, y(mean))
    draw.rectangle([x0, y0, x1, y1], outline="black")
    draw.text(((x0 + x1) / 2, top / 2), title, font=ImageFont.load_default(size=14), fill="black", anchor="mm")
    lx, ly = x0 + 8, y1 - 70
    draw.rectangle([lx - 4, ly - 4, lx + 120, y1 - 6], fill="white", outline=(200, 200, 200))
    _dashed(draw, lx, lx + 18, ly + 6)
    draw.text((lx + 24, ly + 6), f"mean J&F {mean:.3f}", font=small, fill="black", anchor="lm")
    for k, (key, colour) in enumerate(SERIES, 1):
        draw.rectangle([lx, ly + 15 * k, lx + 18, ly + 15 * k + 10], fill=colour)
        draw.text((lx + 24, ly + 15 * k + 5), key, font=small, fill="black", anchor="lm")
    return image


def _dashed(draw: ImageDraw.ImageDraw, start: float, end: float, y: float, dash: int = 5) -> None:
    x = start
    while x < end:
        draw.line([(x, y), (min(x + dash, end), y)], fill="black")
        x += 2 * dash
