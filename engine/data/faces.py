"""The built-in dataset ``builtin:faces``: procedurally drawn cartoon faces of several species.

Every face is described by parameters drawn from a random generator seeded with ``(seed, index)``
alone, painted with PIL at a supersampled size and downsampled with LANCZOS. A face therefore
never depends on how many others are rendered with it, so large requests are split into chunks
that a process pool renders in parallel with the same result as a serial run.
"""

from __future__ import annotations

import colorsys
import functools
import math
import multiprocessing
import os
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

SPECIES: tuple[str, ...] = ("cat", "dog", "fox", "bear", "human")

_MIN_RES, _MAX_RES = 32, 256
_CHUNK = 250  # faces per pool task
_PARALLEL_MIN = 500  # fewer faces than this are rendered in the calling process
_MAX_WORKERS = 8
_RAMP = np.arange(256.0)
_RING = np.exp(1j * np.linspace(0.0, 2.0 * math.pi, 48, endpoint=False))

Color = tuple[int, int, int]
WHITE: Color = (250, 248, 242)
BLACK: Color = (28, 24, 24)
PINK: Color = (232, 150, 160)

_FURS: dict[str, list[Color]] = {
    "cat": [(226, 140, 60), (140, 140, 150), (50, 46, 48), (238, 234, 226), (235, 205, 160),
            (128, 92, 62), (190, 190, 198)],
    "dog": [(215, 165, 85), (125, 80, 45), (45, 40, 38), (236, 230, 220), (195, 150, 105),
            (150, 145, 140), (170, 85, 40)],
    "fox": [(218, 104, 36), (205, 82, 30), (230, 130, 50), (196, 120, 70), (225, 225, 225)],
    "bear": [(122, 76, 42), (72, 48, 32), (40, 34, 34), (236, 230, 214), (160, 110, 64)],
    "human": [(255, 226, 200), (240, 200, 165), (226, 176, 136), (196, 142, 100),
              (160, 106, 72), (116, 76, 52), (86, 56, 42)],
}
_ANIMAL_EYES: list[Color] = [(110, 180, 70), (220, 190, 40), (222, 140, 30), (90, 150, 220),
                             (170, 110, 50), (80, 55, 35)]
_HUMAN_EYES: list[Color] = [(70, 120, 200), (90, 150, 90), (110, 70, 40), (60, 40, 25),
                            (120, 130, 140)]
_HAIR: list[Color] = [(30, 26, 26), (70, 45, 30), (120, 80, 45), (150, 70, 35), (230, 200, 120),
                      (200, 110, 50), (180, 180, 185), (80, 110, 210), (220, 90, 150)]


def _shade(c: Color, f: float) -> Color:
    """Scale a colour's brightness by ``f`` (clipped)."""
    return tuple(min(255, max(0, int(v * f))) for v in c)  # type: ignore[return-value]


def _mix(a: Color, b: Color, t: float) -> Color:
    """Linear blend from ``a`` (t=0) to ``b`` (t=1)."""
    return tuple(int(x + (y - x) * t) for x, y in zip(a, b))  # type: ignore[return-value]


def _jitter(rng: random.Random, c: Color, amount: int = 14) -> Color:
    """Shift each channel of a colour by a random amount."""
    return tuple(min(255, max(0, v + rng.randint(-amount, amount))) for v in c)  # type: ignore


@dataclass
class _Look:
    """Everything species-specific about one face, in face units (head half-width about 1)."""

    species: str
    fur: Color
    mark: Color  # pattern, ear tips, hair
    light: Color  # muzzle, cheeks, chest
    pattern: str
    head: tuple[float, float, float, float, float]  # rx, ry_top, ry_bottom, chin taper, squareness
    ears: str
    eye: Color
    eye_size: float
    eye_gap: float
    eye_y: float
    nose_y: float


class _Pen:
    """Draws on a PIL image in face coordinates: head centre at 0, y down, points as complex."""

    def __init__(self, draw: ImageDraw.ImageDraw, size: int, cx: float, cy: float,
                 scale: float, angle: float) -> None:
        self.draw, self.origin = draw, complex(cx, cy) * size
        self.rot = scale * size * complex(math.cos(angle), math.sin(angle))

    def on(self, draw: ImageDraw.ImageDraw) -> _Pen:
        """The same pen drawing on another image."""
        pen = _Pen.__new__(_Pen)
        pen.draw, pen.origin, pen.rot = draw, self.origin, self.rot
        return pen

    def _xy(self, pts: np.ndarray) -> list[float]:
        return np.ascontiguousarray(self.origin + self.rot * pts).view(np.float64).tolist()

    def shape(self, pts: np.ndarray, fill: Color | int | None, outline: Color | None = None,
              width: float = 0.04) -> None:
        """Fill a polygon, optionally with an outline ``width`` face units thick."""
        w = max(1, round(width * abs(self.rot))) if outline else 0
        self.draw.polygon(self._xy(pts), fill=fill, outline=outline, width=w)

    def line(self, pts: np.ndarray, fill: Color, width: float = 0.04) -> None:
        """A polyline ``width`` face units thick with round joints."""
        self.draw.line(self._xy(pts), fill=fill, width=max(1, round(width * abs(self.rot))),
                       joint="curve")

    def oval(self, at: complex, rx: float, ry: float, fill: Color | int | None,
             outline: Color | None = None, tilt: float = 0.0, point: float = 0.0,
             width: float = 0.04) -> None:
        """An ellipse; ``point`` in 0..1 sharpens its left and right ends into an almond."""
        y = _RING.imag * np.abs(_RING.imag) ** point
        self.shape(at + (rx * _RING.real + 1j * ry * y) * complex(math.cos(tilt), math.sin(tilt)),
                   fill, outline, width)


def _arc(at: complex, rx: float, ry: float, a0: float, a1: float, n: int = 12) -> np.ndarray:
    """Points along an elliptical arc from angle ``a0`` to ``a1`` (radians, y down)."""
    t = np.linspace(a0, a1, n)
    return at + rx * np.cos(t) + 1j * ry * np.sin(t)


def _pick_look(rng: random.Random, species: str) -> _Look:
    """Draw the species-specific colours, pattern and proportions of one face."""
    fur = _jitter(rng, rng.choice(_FURS[species]))
    dark_fur = sum(fur) < 300
    mark, light = _shade(fur, rng.uniform(0.45, 0.65)), _mix(fur, WHITE, rng.uniform(0.55, 0.9))
    eye = _jitter(rng, rng.choice(_ANIMAL_EYES))
    u = rng.uniform
    if species == "cat":
        pattern = rng.choice(["stripes", "stripes", "patches", "tuxedo", "none"])
        if pattern == "patches":
            fur, mark = _jitter(rng, WHITE, 8), rng.choice([(220, 130, 50), (45, 40, 40)])
        head, ears, size, nose_y = (u(1.0, 1.15), u(0.85, 0.95), u(0.85, 0.95), 0.1, u(2.2, 2.7)), "pointed", u(0.19, 0.26), 0.32
    elif species == "dog":
        pattern = rng.choice(["muzzle", "patch", "blaze", "spots", "none"])
        if pattern == "spots":
            fur, mark = _jitter(rng, WHITE, 8), BLACK
        eye = _jitter(rng, rng.choice(_ANIMAL_EYES[4:]))
        head = (u(0.88, 1.0), u(0.9, 1.0), u(1.0, 1.15), u(0.1, 0.3), u(2.0, 2.5))
        ears = "floppy" if rng.random() < 0.7 else "pointed"
        size, nose_y = u(0.12, 0.17), u(0.42, 0.52)
    elif species == "fox":
        pattern, light = "cheeks", _jitter(rng, WHITE, 8)
        mark = BLACK if rng.random() < 0.7 else _shade(fur, 0.5)
        eye = _jitter(rng, rng.choice(_ANIMAL_EYES[1:3]))
        head, ears, size, nose_y = (u(1.05, 1.2), u(0.8, 0.9), u(1.05, 1.2), u(0.55, 0.7), 2.0), "big", u(0.14, 0.18), 0.78
    elif species == "bear":
        pattern = "panda" if rng.random() < 0.2 else "muzzle"
        if pattern == "panda":
            fur, mark = _jitter(rng, WHITE, 6), BLACK
        light = _mix(fur, (235, 205, 160), 0.6) if pattern == "muzzle" else fur
        eye = BLACK
        head, ears, size, nose_y = (u(1.05, 1.2), u(0.85, 0.95), u(0.9, 1.0), 0.1, u(2.0, 2.4)), "round", u(0.09, 0.12), 0.4
    else:
        pattern, mark, eye = rng.choice(["short", "long", "bob", "afro"]), _jitter(rng, rng.choice(_HAIR)), rng.choice(_HUMAN_EYES)
        light = _mix(fur, PINK, 0.25)
        head, ears, size, nose_y = (u(0.8, 0.9), u(1.0, 1.1), u(1.1, 1.2), u(0.2, 0.35), u(2.0, 2.3)), "human", u(0.13, 0.17), 0.3
    if dark_fur and eye == BLACK:
        eye = (90, 60, 40)
    return _Look(species, fur, mark, light, pattern, head, ears, eye, size,
                 u(0.33, 0.48), u(-0.12, 0.05) + (0.05 if species == "human" else 0.0), nose_y)


@functools.lru_cache(maxsize=64)
def _gradient(size: int, direction: int) -> Image.Image:
    """A 0..255 ramp across the canvas: one of 8 directions, or radial for ``direction`` 8."""
    g = np.linspace(-1.0, 1.0, size)
    if direction == 8:
        t = np.clip(np.hypot(g[None, :], g[:, None]) / 1.4, 0.0, 1.0)
    else:
        a = direction * math.pi / 4.0
        t = (g[None, :] * math.cos(a) + g[:, None] * math.sin(a)) / (abs(math.cos(a)) + abs(math.sin(a)))
        t = t * 0.5 + 0.5
    return Image.fromarray((t * 255.0).astype(np.uint8))


def _background(rng: random.Random, size: int) -> Image.Image:
    """A linear or radial gradient between two random colours."""
    h = rng.random()
    c0 = colorsys.hsv_to_rgb(h, rng.uniform(0.1, 0.5), rng.uniform(0.55, 0.95))
    c1 = colorsys.hsv_to_rgb((h + rng.uniform(-0.15, 0.15)) % 1.0, rng.uniform(0.1, 0.6),
                             rng.uniform(0.35, 0.95))
    img = _gradient(size, rng.randrange(9)).copy()
    img.putpalette((np.outer(255.0 - _RAMP, c0) + np.outer(_RAMP, c1)).astype(np.uint8).tobytes())
    return img.convert("RGB")


def _head_points(lk: _Look) -> np.ndarray:
    """The head outline: a superellipse, taller below than above, narrowing towards the chin."""
    rx, ry_top, ry_bot, taper, sq = lk.head
    c, s = _RING.real, _RING.imag
    x = rx * np.sign(c) * np.abs(c) ** (2.0 / sq)
    y = np.sign(s) * np.abs(s) ** (2.0 / sq) * np.where(s > 0, ry_bot, ry_top)
    return x * (1.0 - taper * np.clip(s, 0.0, None) ** 2) + 1j * y


def _ears(pen: _Pen, lk: _Look, rng: random.Random, outline: Color, front: bool) -> None:
    """Ears behind the head (pointed, big, round, human) or in front of it (floppy)."""
    if (lk.ears == "floppy") != front:
        return
    spread, size = rng.uniform(0.55, 0.8), rng.uniform(0.85, 1.15)
    for side in (-1, 1):
        if lk.ears == "floppy":
            pen.oval(complex(side * 0.95, 0.15), 0.3 * size, 0.62 * size, lk.mark, outline,
                     tilt=side * rng.uniform(-0.15, 0.35))
        elif lk.ears == "human":
            pen.oval(complex(side * lk.head[0], 0.05), 0.16, 0.26, lk.fur, outline, width=0.03)
        elif lk.ears == "round":
            at = complex(side * math.sin(spread) * 0.9, -math.cos(spread) * lk.head[1] * 0.9)
            pen.oval(at, 0.34 * size, 0.34 * size, lk.mark if lk.pattern == "panda" else lk.fur, outline)
            pen.oval(at, 0.18 * size, 0.18 * size, lk.light if lk.pattern != "panda" else lk.mark)
        else:
            h = size * (1.0 if lk.ears == "big" else 0.75)
            up = complex(math.sin(side * spread * 0.9), -math.cos(spread * 0.9))
            base = complex(side * math.sin(spread) * 0.75, -math.cos(spread) * lk.head[1] * 0.75)
            across = up * 1j * (0.42 if lk.ears == "big" else 0.36) * size
            tip = base + up * h
            pen.shape(np.array([base - across, tip, base + across]), lk.fur, outline)
            inner = lk.light if lk.species == "fox" else PINK
            pen.shape(np.array([base - across * 0.55, base + (tip - base) * 0.8, base + across * 0.55]), inner)
            if lk.species == "fox":
                pen.shape(np.array([tip, tip + (base - across - tip) * 0.4, tip + (base + across - tip) * 0.4]), lk.mark)


def _head(img: Image.Image, pen: _Pen, lk: _Look, rng: random.Random, outline: Color) -> None:
    """The head filled with fur or skin, its markings clipped to it, and its outline."""
    pts = _head_points(lk)
    pen.shape(pts, lk.fur)
    layer = img.copy()
    lp = pen.on(ImageDraw.Draw(layer))
    u = rng.uniform
    if lk.pattern == "stripes":
        for x in (-0.3, 0.0, 0.3):
            lp.shape(np.array([x - 0.08 - 1.1j, x + 0.08 - 1.1j, x * 1.15 - u(0.45, 0.65) * 1j]), lk.mark)
        for side in (-1, 1):
            for y in (0.1, 0.32):
                lp.shape(np.array([side * 1.3 + (y - 0.07) * 1j, side * 1.3 + (y + 0.07) * 1j,
                                   side * u(0.6, 0.75) + (y + 0.05) * 1j]), lk.mark)
    elif lk.pattern in ("patches", "spots"):
        big = lk.pattern == "patches"
        for _ in range(rng.randint(2, 3) if big else rng.randint(6, 10)):
            r = u(0.3, 0.55) if big else u(0.06, 0.12)
            lp.oval(complex(u(-1, 1), u(-1, 1)), r, r * u(0.7, 1.3), lk.mark, tilt=u(0, 3))
    elif lk.pattern == "patch":
        side = rng.choice((-1, 1))
        lp.oval(complex(side * lk.eye_gap, lk.eye_y), u(0.3, 0.4), u(0.3, 0.45), lk.mark, tilt=u(0, 3))
    elif lk.pattern == "cheeks":
        for side in (-1, 1):
            lp.oval(complex(side * 0.8, 0.6), 0.65, 0.5, lk.light, tilt=-side * 0.5)
        lp.oval(0.95j, 0.4, 0.35, lk.light)
    if lk.pattern in ("tuxedo", "blaze"):
        lp.shape(np.array([-0.12 - 1.2j, 0.12 - 1.2j, 0.3 + 0.3j, -0.3 + 0.3j]), lk.light)
    if lk.species in ("dog", "bear", "cat") and lk.pattern not in ("none", "spots", "panda", "patches"):
        lp.oval(complex(0, lk.nose_y + 0.2), u(0.4, 0.55), u(0.3, 0.42), lk.light)
    mask = Image.new("L", img.size, 0)
    pen.on(ImageDraw.Draw(mask)).shape(pts, 255)
    box = mask.getbbox()
    img.paste(layer.crop(box), box, mask=mask.crop(box))
    pen.shape(pts, None, outline)


def _eyes(pen: _Pen, lk: _Look, rng: random.Random, outline: Color) -> None:
    """Two eyes (with panda patches, human whites, brows and sometimes glasses)."""
    r, human = lk.eye_size, lk.species == "human"
    slant = rng.uniform(0.05, 0.35) if lk.species in ("cat", "fox") else rng.uniform(-0.1, 0.1)
    point = rng.uniform(0.0, 0.8) if lk.species in ("cat", "fox", "human") else 0.0
    slit = lk.species == "fox" or (lk.species == "cat" and rng.random() < 0.6)
    pupil = rng.uniform(0.35, 0.75)
    brow = rng.uniform(-0.2, 0.25)
    glasses = human and rng.random() < 0.2
    for side in (-1, 1):
        at, tilt = complex(side * lk.eye_gap, lk.eye_y), -side * slant
        if lk.pattern == "panda":
            pen.oval(at + 0.05j, r * 2.3, r * 1.6, BLACK, tilt=side * 0.6)
        if human:
            pen.oval(at, r, r * 0.62, WHITE, outline, tilt=tilt, point=point * 0.6, width=0.025)
            pen.oval(at, r * 0.5, r * 0.5, lk.eye)
            pen.oval(at, r * 0.25, r * 0.25, BLACK)
            pen.line(_arc(at, r * 1.15, r * 0.75, math.pi * 1.1, math.pi * 1.9) + (brow * side * 0.5 - r * 0.55) * 1j
                     + np.linspace(0, side * brow * 0.3, 12) * 1j, lk.mark, 0.05)
        else:
            pen.oval(at, r, r * rng.uniform(0.8, 1.0), lk.eye, outline, tilt=tilt, point=point, width=0.03)
            pen.oval(at, r * (0.22 if slit else pupil), r * 0.85 if slit else r * pupil, BLACK)
        pen.oval(at + r * (-0.3 - 0.3j), r * 0.22, r * 0.22, WHITE)
        if glasses:
            pen.oval(at, r * 1.7, r * 1.4, None, BLACK, width=0.04)
    if glasses:
        pen.line(np.array([-lk.eye_gap + r * 1.7, lk.eye_gap - r * 1.7]) + lk.eye_y * 1j, BLACK, 0.04)


def _nose_mouth(pen: _Pen, lk: _Look, rng: random.Random, outline: Color) -> None:
    """Nose, mouth (with a tongue now and then) and, for cats, whiskers."""
    ny, u = lk.nose_y, rng.uniform
    if lk.species == "human":
        skin = _shade(lk.fur, 0.75)
        pen.line(_arc(complex(0, ny), u(0.06, 0.1), 0.05, 0.3, math.pi - 0.3, 8), skin, 0.035)
        w, my, lips = u(0.18, 0.3), ny + u(0.25, 0.32), _jitter(rng, (170, 70, 80), 20)
        if rng.random() < 0.35:
            pen.shape(_arc(complex(0, my), w, u(0.12, 0.2), 0, math.pi), (90, 30, 40), lips, 0.04)
            pen.shape(np.array([-w * 0.7 + my * 1j, w * 0.7 + my * 1j, w * 0.6 + (my + 0.05) * 1j,
                                -w * 0.6 + (my + 0.05) * 1j]), WHITE)
        else:
            pen.line(_arc(complex(0, my - 0.05), w, u(0.02, 0.12), 0.3, math.pi - 0.3), lips, 0.045)
        return
    nose = PINK if lk.species == "cat" and rng.random() < 0.6 else _jitter(rng, BLACK, 10)
    nw = u(0.09, 0.12) if lk.species == "cat" else u(0.13, 0.2)
    if lk.species == "cat":
        pen.shape(np.array([-nw + (ny - 0.05) * 1j, nw + (ny - 0.05) * 1j, (ny + 0.06) * 1j]), nose, outline, 0.02)
    else:
        pen.oval(complex(0, ny), nw, nw * 0.65, nose, tilt=math.pi, point=0.3)
        pen.oval(complex(-nw * 0.35, ny - nw * 0.25), nw * 0.3, nw * 0.15, _mix(nose, WHITE, 0.6))
    top, w = ny + nw * 0.5, u(0.1, 0.16)
    if lk.species != "fox":
        if lk.species == "dog" and rng.random() < 0.35:
            pen.oval(complex(0, top + 0.18), w * 0.8, 0.16, _jitter(rng, (230, 110, 120)), outline, width=0.025)
        mouth = np.concatenate([_arc(complex(-w, top + 0.1), w, w * 0.8, 0, math.pi)[::-1], [top * 1j],
                                _arc(complex(w, top + 0.1), w, w * 0.8, math.pi, 0)])
        pen.line(np.concatenate([[top * 1j], mouth[:12], [top * 1j, (top + 0.1) * 1j]]), outline, 0.03)
        pen.line(mouth[13:], outline, 0.03)
    if lk.species == "cat":
        tone = WHITE if sum(lk.fur) < 400 else _shade(lk.fur, 0.4)
        for side in (-1, 1):
            for k in range(3):
                a = u(-0.25, -0.05) + k * 0.2
                start = complex(side * 0.25, ny + 0.15)
                pen.line(np.array([start, start + side * u(0.75, 0.95) * complex(math.cos(a), side * 0 + math.sin(a))]), tone, 0.018)


def _hair(pen: _Pen, lk: _Look, rng: random.Random, front: bool) -> None:
    """Human hair: a mass behind the head, then a fringe over the forehead."""
    rx, ry = lk.head[0], lk.head[1]
    if not front:
        shapes = {"long": (0.25j, 1.25, 1.35), "bob": (-0.05j, 1.2, 1.1), "afro": (-0.3j, 1.5, 1.4),
                  "short": (-0.2j, 1.05, 0.98)}
        at, hx, hy = shapes[lk.pattern]
        pen.oval(at, hx * rx / 0.85, hy, lk.mark)
        return
    hair_line, side_y = rng.uniform(-0.6, -0.4), (0.1 if lk.pattern != "short" else -0.3)
    tilt = rng.uniform(-0.25, 0.25)
    top = _arc(0j, rx * 1.06, ry * 1.08, math.pi - math.asin(min(1, -side_y / ry)) * -1, 2 * math.pi, 20)
    x = np.linspace(rx * 1.06, -rx * 1.06, 16)
    edge = x + 1j * (hair_line + (side_y - hair_line) * np.abs(x / rx) ** 3 + tilt * x)
    pen.shape(np.concatenate([_arc(0j, rx * 1.06, ry * 1.08, math.pi + math.asin(min(1.0, side_y / ry)), 2 * math.pi - math.asin(min(1.0, side_y / ry)), 20), edge]), lk.mark)


def _body(pen: _Pen, lk: _Look, rng: random.Random, outline: Color) -> None:
    """Shoulders (a shirt for humans, a neck) below the head."""
    if lk.species == "human":
        shirt = tuple(int(v * 255) for v in colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.2, 0.8), rng.uniform(0.3, 0.9)))
        pen.oval(2.3j, 1.7, 1.0, shirt, outline)  # type: ignore[arg-type]
        pen.shape(np.array([-0.35 + 0.6j, 0.35 + 0.6j, 0.4 + 1.5j, -0.4 + 1.5j]), _shade(lk.fur, 0.85))
    else:
        pen.oval(2.0j, 1.5, 1.0, lk.mark if lk.pattern == "panda" else lk.fur, outline)
        if lk.pattern in ("tuxedo", "blaze", "cheeks"):
            pen.oval(1.6j, 0.5, 0.6, lk.light)


def _render_one(seed: int, index: int, size: int) -> tuple[Image.Image, int]:
    """Paint face ``index`` of ``seed`` on a ``size``-pixel canvas; return it and its label."""
    rng = random.Random(f"builtin:faces:{seed}:{index}")
    label = rng.randrange(len(SPECIES))
    lk = _pick_look(rng, SPECIES[label])
    img = _background(rng, size)
    pen = _Pen(ImageDraw.Draw(img), size, rng.uniform(0.46, 0.54), rng.uniform(0.53, 0.6),
               rng.uniform(0.25, 0.3), rng.uniform(-0.15, 0.15))
    outline = _shade(lk.fur, 0.45) if sum(lk.fur) > 150 else (0, 0, 0)
    _body(pen, lk, rng, outline)
    if lk.species == "human":
        _hair(pen, lk, rng, front=False)
    _ears(pen, lk, rng, outline, front=False)
    _head(img, pen, lk, rng, outline)
    _ears(pen, lk, rng, outline, front=True)
    _eyes(pen, lk, rng, outline)
    _nose_mouth(pen, lk, rng, outline)
    if lk.species == "human":
        _hair(pen, lk, rng, front=True)
    return img, label


def _render_range(seed: int, start: int, stop: int, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Render faces ``start..stop-1`` serially."""
    size = resolution * max(2, min(4, 512 // resolution))
    images = np.empty((stop - start, resolution, resolution, 3), np.uint8)
    labels = np.empty(stop - start, np.int64)
    for row, index in enumerate(range(start, stop)):
        img, labels[row] = _render_one(seed, index, size)
        images[row] = np.asarray(img.resize((resolution, resolution), Image.LANCZOS, reducing_gap=2.0))
    return images, labels


def _workers(count: int) -> int:
    """How many processes to render ``count`` faces with (1 = in this process)."""
    if count < _PARALLEL_MIN or multiprocessing.current_process().daemon:
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cpus, _MAX_WORKERS, -(-count // _CHUNK)))


def render_faces(count: int, resolution: int, seed: int = 0, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (count, resolution, resolution, 3) and int64 labels (count,) for face indices start..start+count-1.

    Labels index :data:`SPECIES`. Face ``i`` depends only on ``(seed, i)`` (and the resolution),
    so any split of a range renders the same pixels. Large counts use a process pool.
    """
    if not _MIN_RES <= resolution <= _MAX_RES:
        raise ValueError(f"builtin:faces resolution must be between {_MIN_RES} and {_MAX_RES} pixels, got {resolution}")
    if count < 0 or start < 0:
        raise ValueError(f"count and start must be non-negative, got count={count}, start={start}")
    workers = _workers(count)
    if workers == 1:
        return _render_range(seed, start, start + count, resolution)
    bounds = range(start, start + count, _CHUNK)
    jobs = [(seed, a, min(a + _CHUNK, start + count), resolution) for a in bounds]
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with multiprocessing.get_context(method).Pool(workers) as pool:
        parts = pool.starmap(_render_range, jobs)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
