"""Write docs/images/builtin_faces.png: 8x8 `builtin:faces` at 64 px, each cell upscaled 2x."""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.data.faces import render_faces  # noqa: E402


def main(out: Path = ROOT / "docs" / "images" / "builtin_faces.png") -> None:
    """Render the first 64 faces of seed 0 at 64 px and save them as one grid."""
    rows, resolution, zoom = 8, 64, 2
    images, _ = render_faces(rows * rows, resolution, seed=0)
    cell = resolution * zoom
    grid = Image.new("RGB", (rows * cell, rows * cell))
    for i, face in enumerate(images):
        tile = Image.fromarray(face).resize((cell, cell), Image.NEAREST)
        grid.paste(tile, ((i % rows) * cell, (i // rows) * cell))
    out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(out, optimize=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
