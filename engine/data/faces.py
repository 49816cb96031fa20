"""The built-in dataset ``builtin:faces``: procedurally drawn cartoon faces of several species.

Every face is described by parameters drawn from a random generator seeded with ``(seed, index)``
alone, painted with PIL on a canvas 2-4x the target size and downsampled with LANCZOS. A face
never depends on which other faces are rendered with it, so large requests are split into chunks
that a process pool renders in parallel, giving exactly the pixels a serial run gives.
"""

from __future__ import annotations

import colorsys
import functools
import math
import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SPECIES: tuple[str, ...] = ("cat", "dog", "fox", "bear", "human")

MIN_RESOLUTION, MAX_RESOLUTION = 32, 256
_CHUNK = 250  # at least this many faces per worker process
_PARALLEL_MIN = 500  # fewer faces than this are rendered in the calling process
_MAX_WORKERS = 8
_RAMP = np.arange(256.0)
_ANGLES = np.linspace(0.0, 2.0 * math.pi, 48, endpoint=False)  # vertices of ovals and heads
_COS, _SIN = np.cos(_ANGLES), np.sin(_ANGLES)

Color = tuple[int, int, int]
WHITE: Color = (250, 248, 242)
BLACK: Color = (28, 24, 24)
PINK: Color = (232, 150, 160)


def _rgb(channels: Iterable[int]) -> Color:
    """A colour from its three channels."""
    r, g, b = channels
    return r, g, b


def _palette(hexes: str) -> list[Color]:
    """Colours written as space-separated hex triplets."""
    return [_rgb(bytes.fromhex(h)) for h in hexes.split()]


_FURS: dict[str, list[Color]] = {
    "cat": _palette("e28c3c 8c8c96 322e30 eeeae2 ebcda0 805c3e bebec6"),
    "dog": _palette("d7a555 7d502d 2d2826 ece6dc c39669 96918c aa5528"),
    "fox": _palette("da6824 cd521e e68232 c47846 e1e1e1"),
    "bear": _palette("7a4c2a 483020 282222 ece6d6 a06e40"),
    "human": _palette("ffe2c8 f0c8a5 e2b088 c48e64 a06a48 744c34 56382a"),
}
_EYES = _palette("6eb446 dcbe28 de8c1e 5a96dc 965f2d 503723")
_HUMAN_EYES = _palette("4678c8 5a965a 6e4628 3c2819 78828c")
_HAIR = (_palette("1e1a1a 462d1e 78502d 964623 e6c878 c86e32 b4b4b9"),  # natural, dyed
         _palette("506ed2 dc5a96 50b478"))
_HAIR_STYLES = {"long": (0.25j, 1.45, 1.35), "bob": (-0.05j, 1.4, 1.1), "afro": (-0.3j, 1.75, 1.4),
                "short": (-0.2j, 1.2, 0.98)}  # hair mass behind the head: centre, rx, ry


def _shade(c: Color, f: float) -> Color:
    """Scale a colour's brightness by ``f`` (clipped)."""
    return _rgb(min(255, max(0, int(v * f))) for v in c)


def _mix(a: Color, b: Color, t: float) -> Color:
    """Linear blend from ``a`` (t=0) to ``b`` (t=1)."""
    return _rgb(int(x + (y - x) * t) for x, y in zip(a, b))


def _jitter(rng: random.Random, c: Color, amount: int = 14) -> Color:
    """Shift each channel of a colour by a random amount."""
    return _rgb(min(255, max(0, v + rng.randint(-amount, amount))) for v in c)


@dataclass
class _Look:
    """The species-specific traits of one face, in face units (head half-width about 1)."""

    species: str
    fur: Color
    mark: Color  # pattern, floppy ears, ear tips, hair
    light: Color  # muzzle, cheeks, chest, inner ears
    pattern: str  # a marking for animals, a hair style for humans
    head: tuple[float, float, float, float, float]  # rx, ry above, ry below, chin taper, squareness
    ears: str  # pointed, big, upright, floppy, round or human
    eye: Color
    eye_size: float
    eye_gap: float
    eye_y: float
    nose_y: float


class _Pen:
    """Draws on a PIL image in face coordinates: head centre at 0, y down, points as complex."""

    def __init__(self, draw: ImageDraw.ImageDraw, size: int, centre: complex, scale: float,
                 angle: float) -> None:
        self.draw, self.origin = draw, centre * size
        self.rot = scale * size * complex(math.cos(angle), math.sin(angle))

    def on(self, draw: ImageDraw.ImageDraw) -> _Pen:
        """The same pen drawing on another image."""
        pen = _Pen.__new__(_Pen)
        pen.draw, pen.origin, pen.rot = draw, self.origin, self.rot
        return pen

    def _px(self, pts: np.ndarray) -> list[float]:
        """Face points to a flat list of pixel coordinates."""
        return np.ascontiguousarray(self.origin + self.rot * pts).view(np.float64).tolist()

    def shape(self, pts: np.ndarray, fill: Color | int | None, outline: Color | None = None,
              width: float = 0.04) -> None:
        """Fill a polygon, optionally outlined ``width`` face units thick."""
        self._polygon(self._px(pts), fill, outline, width)

    def oval(self, at: complex, rx: float, ry: float, fill: Color | int | None,
             outline: Color | None = None, tilt: float = 0.0, point: float = 0.0,
             width: float = 0.04) -> None:
        """An ellipse turned by ``tilt``; ``point`` in 0..1 sharpens its ends into an almond."""
        y = _SIN * np.abs(_SIN) ** point if point else _SIN
        turn = self.rot * complex(math.cos(tilt), math.sin(tilt))
        z = (self.origin + self.rot * at) + (turn * rx) * _COS + (turn * ry * 1j) * y
        self._polygon(z.view(np.float64).tolist(), fill, outline, width)

    def line(self, pts: np.ndarray, fill: Color, width: float = 0.04) -> None:
        """A polyline ``width`` face units thick."""
        self._stroke(self._px(pts), fill, width)

    def _polygon(self, xy: list[float], fill: Color | int | None, outline: Color | None,
                 width: float) -> None:
        if fill is not None:
            self.draw.polygon(xy, fill=fill)
        if outline is not None:
            self._stroke(xy + xy[:2], outline, width)

    def _stroke(self, xy: list[float], fill: Color, width: float) -> None:
        # round joints are slow in PIL and only needed where few points meet at sharp angles
        w = max(1, round(width * abs(self.rot)))
        self.draw.line(xy, fill=fill, width=w, joint="curve" if len(xy) <= 10 else None)


def _arc(at: complex, rx: float, ry: float, a0: float, a1: float, n: int = 12) -> np.ndarray:
    """Points along an elliptical arc from angle ``a0`` to ``a1`` (radians, y down)."""
    t = np.linspace(a0, a1, n)
    return at + rx * np.cos(t) + 1j * ry * np.sin(t)


def _pick_look(rng: random.Random, species: str) -> _Look:
    """Draw the colours, marking and proportions of one face of ``species``."""
    u = rng.uniform
    fur = _jitter(rng, rng.choice(_FURS[species]))
    lk = _Look(species=species, fur=fur, mark=_shade(fur, u(0.45, 0.65)),
               light=_mix(fur, WHITE, u(0.55, 0.9)), pattern="none",
               head=(u(1.0, 1.15), u(0.85, 0.95), u(0.85, 0.95), 0.1, u(2.2, 2.6)), ears="pointed",
               eye=_jitter(rng, rng.choice(_EYES)), eye_size=u(0.19, 0.26), eye_gap=u(0.33, 0.48),
               eye_y=u(-0.12, 0.05), nose_y=0.32)  # a cat's; the other species change some
    if species == "cat":  # tabbies twice as likely
        lk.pattern = rng.choice(["stripes", "stripes", "patches", "tuxedo", "none"])
        if lk.pattern == "patches":  # calico: white with orange or black patches
            lk.fur, lk.mark = _jitter(rng, WHITE, 8), rng.choice([(220, 130, 50), (45, 40, 40)])
    elif species == "dog":
        lk.pattern = rng.choice(["muzzle", "patch", "blaze", "spots", "none"])
        if lk.pattern == "spots":  # dalmatian
            lk.fur, lk.mark = _jitter(rng, WHITE, 8), BLACK
        lk.head = (u(0.88, 1.0), u(0.9, 1.0), u(1.0, 1.15), u(0.1, 0.3), u(2.0, 2.5))
        lk.ears = "floppy" if rng.random() < 0.7 else "upright"
        lk.eye, lk.eye_size, lk.nose_y = _jitter(rng, rng.choice(_EYES[4:])), u(0.12, 0.17), 0.47
    elif species == "fox":
        lk.pattern, lk.light, lk.ears, lk.eye_size, lk.nose_y = "cheeks", WHITE, "big", 0.16, 0.78
        lk.mark = BLACK if rng.random() < 0.7 else _shade(fur, 0.5)
        lk.head = (u(1.05, 1.2), u(0.8, 0.9), u(1.05, 1.2), u(0.55, 0.7), 2.0)
        lk.eye = _jitter(rng, rng.choice(_EYES[1:3]))
    elif species == "bear":
        lk.pattern = "panda" if rng.random() < 0.2 else "muzzle"
        if lk.pattern == "panda":
            lk.fur, lk.mark = _jitter(rng, WHITE, 6), BLACK
        lk.light = _mix(lk.fur, (235, 205, 160), 0.6)
        lk.head = (u(1.05, 1.2), u(0.85, 0.95), u(0.9, 1.0), 0.1, u(2.0, 2.4))
        lk.ears, lk.eye, lk.eye_size, lk.nose_y = "round", (60, 40, 30), u(0.09, 0.12), 0.4
    else:
        dyed = rng.random() < 0.08
        lk.pattern, lk.mark = rng.choice(list(_HAIR_STYLES)), _jitter(rng, rng.choice(_HAIR[dyed]))
        lk.head = (u(0.8, 0.9), u(1.0, 1.1), u(1.1, 1.2), u(0.2, 0.35), u(2.0, 2.3))
        lk.ears, lk.eye, lk.eye_size = "human", rng.choice(_HUMAN_EYES), u(0.13, 0.17)
        lk.eye_y = u(-0.05, 0.08)
    return lk


@functools.lru_cache(maxsize=64)
def _gradient(size: int, direction: int) -> Image.Image:
    """A 0..255 ramp across the canvas: one of 8 directions, or radial for ``direction`` 8."""
    g = np.linspace(-1.0, 1.0, size)
    if direction == 8:
        t = np.clip(np.hypot(g[None, :], g[:, None]) / 1.4, 0.0, 1.0)
    else:
        c, s = math.cos(direction * math.pi / 4.0), math.sin(direction * math.pi / 4.0)
        t = (g[None, :] * c + g[:, None] * s) / (abs(c) + abs(s)) * 0.5 + 0.5
    return Image.fromarray((t * 255.0).astype(np.uint8))


def _background(rng: random.Random, size: int) -> Image.Image:
    """A linear or radial gradient between two random colours."""
    h = rng.random()
    c0 = colorsys.hsv_to_rgb(h, rng.uniform(0.1, 0.5), rng.uniform(0.55, 0.95))
    c1 = colorsys.hsv_to_rgb((h + rng.uniform(-0.15, 0.15)) % 1.0, rng.uniform(0.1, 0.6),
                             rng.uniform(0.35, 0.95))
    img = _gradient(size, rng.randrange(9)).copy()  # the ramp indexes a palette from c0 to c1
    img.putpalette((np.outer(255.0 - _RAMP, c0) + np.outer(_RAMP, c1)).astype(np.uint8).tobytes())
    return img.convert("RGB")


def _body(pen: _Pen, lk: _Look, rng: random.Random, outline: Color) -> None:
    """Shoulders below the head: fur (with a pale chest for some), or a neck and a shirt."""
    if lk.species == "human":
        shirt = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.2, 0.8), rng.uniform(0.3, 0.9))
        pen.oval(2.3j, 1.7, 1.0, _rgb(int(v * 255) for v in shirt), outline)
        pen.shape(np.array([-0.35 + 0.6j, 0.35 + 0.6j, 0.4 + 1.5j, -0.4 + 1.5j]),
                  _shade(lk.fur, 0.85))
    else:
        pen.oval(2.0j, 1.5, 1.0, lk.mark if lk.pattern == "panda" else lk.fur, outline)
        if lk.pattern in ("tuxedo", "blaze", "cheeks"):
            pen.oval(1.6j, 0.5, 0.6, lk.light)


def _hair(pen: _Pen, lk: _Look, rng: random.Random, front: bool) -> None:
    """Human hair: a mass behind the head, or a fringe over the forehead."""
    rx, ry = lk.head[0] * 1.06, lk.head[1] * 1.08
    outline = _shade(lk.mark, 0.6)
    if not front:
        at, hx, hy = _HAIR_STYLES[lk.pattern]
        pen.oval(at, hx * rx, hy, lk.mark, outline)
        return
    side = 0.15 if lk.pattern != "short" else -0.3  # how far down the sides the fringe reaches
    a = math.asin(side / ry)
    crown = _arc(0j, rx, ry, math.pi - a, 2.0 * math.pi + a, 20)
    x = np.linspace(crown[-1].real, crown[0].real, 16)
    hairline = rng.uniform(-0.62, -0.4) + (side + 0.5) * np.abs(x / rx) ** 3
    pen.shape(np.concatenate([crown, x + 1j * (hairline + rng.uniform(-0.25, 0.25) * x)]),
              lk.mark, outline, 0.03)


def _ears(pen: _Pen, lk: _Look, rng: random.Random, outline: Color, front: bool) -> None:
    """Ears behind the head (pointed, big, upright, round, human) or in front of it (floppy)."""
    if (lk.ears == "floppy") != front:
        return
    spread, size = rng.uniform(0.55, 0.8), rng.uniform(0.85, 1.15)
    for side in (-1, 1):
        base = complex(side * math.sin(spread), -math.cos(spread) * lk.head[1])
        base *= 0.95 if lk.ears == "round" else 0.8
        up = complex(math.sin(side * spread * 0.9), -math.cos(spread * 0.9))
        if lk.ears == "floppy":
            pen.oval(complex(side * 0.95, 0.15), 0.3 * size, 0.62 * size, lk.mark, outline,
                     tilt=side * rng.uniform(-0.15, 0.35))
        elif lk.ears == "human":
            pen.oval(complex(side * lk.head[0], 0.05), 0.16, 0.26, lk.fur, outline, width=0.03)
        elif lk.ears == "round":
            panda = lk.pattern == "panda"
            pen.oval(base, 0.34 * size, 0.34 * size, lk.mark if panda else lk.fur, outline)
            if not panda:
                pen.oval(base, 0.18 * size, 0.18 * size, lk.light)
        elif lk.ears == "upright":  # a dog's: long, with blunt tips
            at, tilt = base + up * 0.45 * size, math.atan2(up.imag, up.real)
            pen.oval(at, 0.58 * size, 0.28 * size, lk.fur, outline, tilt, point=0.4)
            pen.oval(at + up * 0.06, 0.4 * size, 0.15 * size, lk.light, tilt=tilt, point=0.4)
        else:
            across = up * 1j * (0.42 if lk.ears == "big" else 0.36) * size
            tip = base + up * size * (1.0 if lk.ears == "big" else 0.75)
            pen.shape(np.array([base - across, tip, base + across]), lk.fur, outline)
            pen.shape(np.array([base - across * 0.55, base + (tip - base) * 0.8,
                                base + across * 0.55]), PINK if lk.species == "cat" else lk.light)
            if lk.species == "fox":  # dark tips
                pen.shape(tip + np.array([0, (base - across - tip) * 0.4,
                                          (base + across - tip) * 0.4]), lk.mark)


def _head_points(lk: _Look) -> np.ndarray:
    """The head outline: a superellipse, taller below than above, narrowing towards the chin."""
    rx, ry_top, ry_bottom, taper, square = lk.head
    c, s = _COS, _SIN
    x = rx * np.sign(c) * np.abs(c) ** (2.0 / square)
    y = np.sign(s) * np.abs(s) ** (2.0 / square) * np.where(s > 0, ry_bottom, ry_top)
    return x * (1.0 - taper * np.clip(s, 0.0, None) ** 2) + 1j * y


def _markings(pen: _Pen, lk: _Look, rng: random.Random) -> None:
    """Stripes, patches, spots, blazes, muzzles, cheeks, beards and blush, clipped to the head."""
    u, p = rng.uniform, lk.pattern
    if p == "stripes":
        for x in (-0.3, 0.0, 0.3):
            pen.shape(np.array([x - 0.08 - 1.1j, x + 0.08 - 1.1j, x * 1.15 - u(0.45, 0.65) * 1j]),
                      lk.mark)
        for side in (-1, 1):
            for y in (0.1, 0.32):
                pen.shape(np.array([side * 1.3 + (y - 0.07) * 1j, side * 1.3 + (y + 0.07) * 1j,
                                    side * u(0.6, 0.75) + (y + 0.05) * 1j]), lk.mark)
    elif p in ("patches", "spots"):
        for _ in range(rng.randint(2, 3) if p == "patches" else rng.randint(6, 10)):
            r = u(0.3, 0.55) if p == "patches" else u(0.06, 0.12)
            pen.oval(complex(u(-1, 1), u(-1, 1)), r, r * u(0.7, 1.3), lk.mark, tilt=u(0, 3))
    elif p == "patch":
        at = complex(rng.choice((-1, 1)) * lk.eye_gap, lk.eye_y)
        pen.oval(at, u(0.3, 0.4), u(0.3, 0.45), lk.mark, tilt=u(0, 3))
    elif p == "cheeks":
        for side in (-1, 1):
            pen.oval(complex(side * 0.8, 0.6), 0.65, 0.5, lk.light, tilt=-side * 0.5)
        pen.oval(0.95j, 0.4, 0.35, lk.light)
    if p in ("tuxedo", "blaze"):
        pen.shape(np.array([-0.12 - 1.2j, 0.12 - 1.2j, 0.3 + 0.3j, -0.3 + 0.3j]), lk.light)
    if p in ("stripes", "tuxedo", "muzzle", "patch", "blaze"):
        pen.oval(complex(0, lk.nose_y + 0.2), u(0.4, 0.55), u(0.3, 0.42), lk.light)
    if lk.species == "human":
        if rng.random() < 0.12:  # beard
            pen.oval(complex(0, lk.nose_y + 0.75), 0.8, 0.5, lk.mark)
        if rng.random() < 0.4:
            for side in (-1, 1):
                pen.oval(complex(side * 0.5, lk.nose_y + 0.05), 0.15, 0.1, _mix(lk.fur, PINK, 0.4))


def _head(img: Image.Image, pen: _Pen, lk: _Look, rng: random.Random, outline: Color) -> None:
    """The head filled with fur or skin, its markings clipped to it, and its outline."""
    pts = _head_points(lk)
    pen.shape(pts, lk.fur)
    layer, mask = img.copy(), Image.new("L", img.size, 0)
    _markings(pen.on(ImageDraw.Draw(layer)), lk, rng)
    pen.on(ImageDraw.Draw(mask)).shape(pts, 255)
    box = mask.getbbox()
    img.paste(layer.crop(box), box, mask=mask.crop(box))
    pen.shape(pts, None, outline)


def _eyes(pen: _Pen, lk: _Look, rng: random.Random, outline: Color) -> None:
    """Two eyes: slanted with slit pupils, round and dark, or human with whites and brows."""
    r, human, feline = lk.eye_size, lk.species == "human", lk.species in ("cat", "fox")
    slant = rng.uniform(0.05, 0.35) if feline else rng.uniform(-0.1, 0.1)
    point = rng.uniform(0.0, 0.8) if feline or human else 0.0
    slit = lk.species == "fox" or (lk.species == "cat" and rng.random() < 0.6)
    pupil, brow = rng.uniform(0.35, 0.75), rng.uniform(-0.25, 0.25)
    glasses = human and rng.random() < 0.2
    for side in (-1, 1):
        at, tilt = complex(side * lk.eye_gap, lk.eye_y), -side * slant
        if lk.pattern == "panda":
            pen.oval(at + 0.05j, r * 2.3, r * 1.6, BLACK, tilt=side * 0.6)
        if human:
            pen.oval(at, r, r * 0.62, WHITE, outline, tilt, point * 0.6, width=0.025)
            pen.oval(at, r * 0.5, r * 0.5, lk.eye)
            pen.oval(at, r * 0.25, r * 0.25, BLACK)
            arch = _arc(at - r * 1.1j, r * 1.2, r * 0.45, 1.1 * math.pi, 1.9 * math.pi, 8)
            pen.line(arch + 1j * brow * side * (arch.real - at.real), _shade(lk.mark, 0.8), 0.06)
        else:
            pen.oval(at, r, r * rng.uniform(0.8, 1.0), lk.eye, outline, tilt, point, width=0.03)
            pen.oval(at, r * (0.22 if slit else pupil), r * (0.85 if slit else pupil), BLACK)
        pen.oval(at + r * (-0.3 - 0.3j), r * 0.22, r * 0.22, WHITE)
        if glasses:
            pen.oval(at, r * 1.7, r * 1.4, None, BLACK)
    if glasses:
        pen.line(np.array([r * 1.7 - lk.eye_gap, lk.eye_gap - r * 1.7]) + lk.eye_y * 1j, BLACK)


def _nose_mouth(pen: _Pen, lk: _Look, rng: random.Random, outline: Color) -> None:
    """Nose, mouth (a tongue now and then) and, for cats, whiskers."""
    ny, u = lk.nose_y, rng.uniform
    if lk.species == "human":
        pen.line(_arc(complex(0, ny), u(0.06, 0.1), 0.05, 0.3, math.pi - 0.3, 8),
                 _shade(lk.fur, 0.75), 0.035)
        w, my, lips = u(0.18, 0.3), ny + u(0.25, 0.32), _jitter(rng, (170, 70, 80), 20)
        if rng.random() < 0.35:  # open smile with teeth
            pen.shape(_arc(complex(0, my), w, u(0.12, 0.2), 0, math.pi), (90, 30, 40), lips, 0.04)
            pen.shape(np.array([-0.7 * w, 0.7 * w, 0.6 * w + 0.05j, -0.6 * w + 0.05j]) + my * 1j,
                      WHITE)
        else:
            pen.line(_arc(complex(0, my - 0.05), w, u(0.02, 0.12), 0.3, math.pi - 0.3), lips, 0.045)
        return
    if lk.species == "cat":
        nw, nose = u(0.09, 0.12), PINK if rng.random() < 0.6 else (90, 60, 60)
        pen.shape(np.array([-nw - 0.05j, nw - 0.05j, 0.06j]) + ny * 1j, nose, outline, 0.02)
    else:
        nw, nose = u(0.13, 0.2), _jitter(rng, BLACK, 10)
        pen.oval(complex(0, ny), nw, nw * 0.65, nose, tilt=math.pi, point=0.3)
        pen.oval(complex(-nw * 0.35, ny - nw * 0.25), nw * 0.3, nw * 0.15, _mix(nose, WHITE, 0.6))
    top, w = ny + nw * 0.5, u(0.1, 0.16)
    if lk.species != "fox":
        if lk.species == "dog" and rng.random() < 0.35:
            pen.oval(complex(0, top + 0.18), w * 0.8, 0.16, _jitter(rng, (230, 110, 120)), outline,
                     width=0.025)
        pen.line(np.array([top * 1j, (top + 0.1) * 1j]), outline, 0.03)
        for side in (-1, 1):
            pen.line(_arc(complex(side * w, top + 0.1), w, w * 0.8, 0.0, math.pi), outline, 0.03)
    if lk.species == "cat":
        tone = WHITE if sum(lk.fur) < 400 else _shade(lk.fur, 0.4)
        for side, a in zip((-1, -1, -1, 1, 1, 1), (-0.2, 0.0, 0.2) * 2):
            start, a = complex(side * 0.25, ny + 0.15), a + u(-0.08, 0.08)
            end = start + u(0.75, 0.95) * complex(side * math.cos(a), math.sin(a))
            pen.line(np.array([start, end]), tone, 0.018)


def _render_one(seed: int, index: int, size: int) -> tuple[Image.Image, int]:
    """Paint face ``index`` of ``seed`` on a ``size``-pixel canvas; return it and its label."""
    rng = random.Random(f"builtin:faces:{seed}:{index}")
    label = rng.randrange(len(SPECIES))
    lk = _pick_look(rng, SPECIES[label])
    img = _background(rng, size)
    centre = complex(rng.uniform(0.46, 0.54), rng.uniform(0.53, 0.6))
    pen = _Pen(ImageDraw.Draw(img), size, centre, rng.uniform(0.24, 0.3), rng.uniform(-0.15, 0.15))
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


def _render_range(seed: int, start: int, stop: int, res: int) -> tuple[np.ndarray, np.ndarray]:
    """Render faces ``start..stop-1`` in this process."""
    size = res * (4 if res < 64 else 3 if res <= 128 else 2)  # supersampled canvas
    images = np.empty((stop - start, res, res, 3), np.uint8)
    labels = np.empty(stop - start, np.int64)
    for row, index in enumerate(range(start, stop)):
        img, labels[row] = _render_one(seed, index, size)
        images[row] = np.asarray(img.resize((res, res), Image.Resampling.LANCZOS, reducing_gap=1.5))
    return images, labels


def _workers(count: int) -> int:
    """How many processes should render ``count`` faces (1: the calling process alone)."""
    if count < _PARALLEL_MIN:
        return 1  # small jobs are not worth starting processes
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cpus or 1, _MAX_WORKERS, -(-count // _CHUNK)))


def render_faces(count: int, resolution: int, seed: int = 0,
                 start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (count, resolution, resolution, 3) and int64 labels (count,) for face indices
    start..start+count-1.

    Labels index :data:`SPECIES`. Face ``i`` depends only on ``(seed, i)`` (and the resolution),
    so any split of a range gives the same pixels. 500 faces or more are split between this
    process and worker processes started as ``python -m engine.data.faces`` (neither forked,
    which can deadlock beside torch's threads, nor multiprocessing-spawned, which re-runs the
    caller's script).
    """
    if not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        raise ValueError(f"builtin:faces resolution must be between {MIN_RESOLUTION} and {MAX_RESOLUTION} "
                         f"pixels, got {resolution}")
    if count < 0 or start < 0:
        raise ValueError(f"count and start must be non-negative, got {count} and {start}")
    workers = _workers(count)
    bounds = [start + count * i // workers for i in range(workers + 1)]
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    with tempfile.TemporaryDirectory(prefix="faces-") as tmp:
        outs = [Path(tmp) / f"part{i}.npz" for i in range(1, workers)]
        procs = [subprocess.Popen([sys.executable, "-m", "engine.data.faces", str(seed), str(bounds[i]),
                                   str(bounds[i + 1]), str(resolution), str(out)], env=env)
                 for i, out in zip(range(1, workers), outs)]
        parts = [_render_range(seed, bounds[0], bounds[1], resolution)]
        for proc, out in zip(procs, outs):
            if proc.wait() != 0:
                raise RuntimeError(f"a builtin:faces worker process failed (exit code {proc.returncode})")
            with np.load(out) as part:
                parts.append((part["images"], part["labels"]))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


if __name__ == "__main__":
    _seed, _start, _stop, _res = map(int, sys.argv[1:5])
    _images, _labels = _render_range(_seed, _start, _stop, _res)
    np.savez(sys.argv[5], images=_images, labels=_labels)
