"""Draw the app icon (a transperineal fan with the symphysis, the head and the angle of progression) into
resources/icons/: workstation.png (256 px), workstation.ico (Windows) and workstation-512.png (macOS .icns source).

    python packaging/make_icon.py
"""
from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parents[1] / "resources" / "icons"


def draw(size: int = 512) -> Image.Image:
    s = size / 512
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle([8 * s, 8 * s, 504 * s, 504 * s], radius=90 * s, fill=(18, 32, 46, 255))
    apex = (256 * s, 40 * s)
    d.pieslice([apex[0] - 430 * s, apex[1] - 430 * s, apex[0] + 430 * s, apex[1] + 430 * s], 35, 145,
               fill=(70, 78, 86, 255))
    d.ellipse([205 * s, 210 * s, 425 * s, 470 * s], fill=(32, 36, 42, 255), outline=(235, 235, 225, 255),
              width=int(14 * s))  # fetal head
    d.ellipse([105 * s, 120 * s, 235 * s, 175 * s], fill=(190, 190, 180, 255))  # pubic symphysis
    vertex, superior = (226 * s, 160 * s), (110 * s, 150 * s)
    tangent = (400 * s, 300 * s)
    d.line([vertex, superior], fill=(255, 196, 0, 255), width=int(12 * s))
    d.line([vertex, tangent], fill=(0, 200, 255, 255), width=int(12 * s))
    r = 60 * s
    a0 = math.degrees(math.atan2(superior[1] - vertex[1], superior[0] - vertex[0]))
    a1 = math.degrees(math.atan2(tangent[1] - vertex[1], tangent[0] - vertex[0]))
    d.arc([vertex[0] - r, vertex[1] - r, vertex[0] + r, vertex[1] + r], a1, a0, fill=(255, 255, 255, 255),
          width=int(8 * s))
    return img


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    big = draw(512)
    big.save(OUT / "workstation-512.png")
    big.resize((256, 256), Image.LANCZOS).save(OUT / "workstation.png")
    big.save(OUT / "workstation.ico", sizes=[(16, 16), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)])


if __name__ == "__main__":
    main()
