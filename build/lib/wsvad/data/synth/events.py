"""Anomalous events of the synthetic dataset, one function per class.

Each function gets the frame range ``[start, end)`` it was given and returns the walkers and
overlays that render the event plus the exact range the event really occupies (a run ends when the
runner has left the view, an abandoned object stays until the end of the video). The annotation is
written from that returned range. Events are made visually strong and several 16-frame snippets
long, and happen in the central part of the frame, which a single centre crop keeps.

Class names follow UCF-Crime where a class fits (``Fighting``, ``Explosion``); ``Running`` and
``AbandonedObject`` have no UCF-Crime counterpart and keep descriptive names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from wsvad.data.synth.scene import WALK_SPEED, Scene, Walker, draw_box, fill_disc, random_colors

FIST = np.array([230, 180, 150], np.float32)


@dataclass
class Overlay:
    """Something drawn over the people for frames ``[start, end)`` (flash, debris, smoke, fists)."""

    start: int
    end: int
    paint: Callable[[np.ndarray, int], None]  # (frame, t) -> None, draws in place

    def draw(self, frame: np.ndarray, t: int, scene: Scene) -> None:
        if self.start <= t < self.end:
            self.paint(frame, t)


@dataclass
class Rendered:
    walkers: list[Walker]
    overlays: list[Overlay]
    start: int
    end: int  # exclusive


def _centre_point(rng: np.random.Generator, scene: Scene) -> tuple[float, float]:
    """A point on the ground in the middle half of the frame, where a centre crop sees it."""
    H, W = scene.background.shape[:2]
    return float(rng.uniform(0.35, 0.65) * W), float(
        rng.uniform(scene.horizon + 0.35 * (H - scene.horizon), H * 0.95)
    )


def fighting(
    rng: np.random.Generator, scene: Scene, n_frames: int, fps: float, start: int, end: int
) -> Rendered:
    """Two or three people walk up to each other, then lunge, shove and swing erratically."""
    mx, my = _centre_point(rng, scene)
    h = float(scene.height_at(my))
    n_fighters = int(rng.integers(2, 4))
    walkers, overlays = [], []
    approach = int(1.2 * fps)
    for k in range(n_fighters):
        side = -1.0 if k % 2 == 0 else 1.0
        home_x = mx + side * (0.22 + 0.12 * (k // 2)) * h
        xs = np.full(n_frames, np.nan, np.float32)
        ys = np.full(n_frames, np.nan, np.float32)
        speed = rng.uniform(*WALK_SPEED) * h / fps
        # Walk in before the fight (normal behaviour, not annotated) and away after it.
        pre = np.arange(max(start - approach, 0), start)
        xs[pre] = home_x + side * speed * (start - pre)
        ys[pre] = my
        fight = np.arange(start, end)
        wobble = (
            np.sin(2 * np.pi * rng.uniform(2.0, 3.5) * fight / fps + rng.uniform(0, 6.3)) * 0.25 * h
        )
        xs[fight] = home_x - side * np.abs(wobble) + rng.normal(0, 0.1 * h, fight.size)
        ys[fight] = my + rng.normal(0, 0.06 * h, fight.size)
        post = np.arange(end, n_frames)
        xs[post] = home_x + side * speed * (post - end + 1)
        ys[post] = my
        shirt, trousers, skin = random_colors(rng, scene.ground)
        walkers.append(Walker(xs, ys, shirt, trousers, skin, stride_rate=2.0))
    fist_rng = np.random.default_rng(rng.integers(2**32))
    fist_offsets = fist_rng.normal(0, 1, (end - start, n_fighters, 2)).astype(np.float32)

    def paint(frame: np.ndarray, t: int) -> None:
        for k, walker in enumerate(walkers):
            dx, dy = fist_offsets[t - start, k]
            fill_disc(
                frame,
                walker.xs[t] + dx * 0.35 * h,
                walker.ys[t] - (0.6 + 0.2 * dy) * h,
                0.09 * h,
                FIST,
            )

    overlays.append(Overlay(start, end, paint))
    return Rendered(walkers, overlays, start, end)


def running(
    rng: np.random.Generator, scene: Scene, n_frames: int, fps: float, start: int, end: int
) -> Rendered:
    """One person sprinting back and forth across the view at six to nine times walking speed.

    Faster than a real sprint (about 4x) and close to the camera, so that a 16-frame snippet shows
    it.
    """
    H, W = scene.background.shape[:2]
    y = float(rng.uniform(0.8, 0.95) * H)
    h = float(scene.height_at(y))
    px = rng.uniform(6.0, 9.0) * rng.uniform(*WALK_SPEED) * h / fps
    # Enter from one side, turn back and forth inside the middle 64% of the width (what a centre
    # crop sees), and leave by the other side: on-screen when the event starts and ends, off before.
    lo, hi, inner = -0.08 * W, 1.08 * W, (0.18 * W, 0.82 * W)
    forward = rng.random() < 0.5
    wanted = (end - start) * px
    n_turns = max(1, int(round((wanted - 0.52 * W) / (0.64 * W))))
    turns = [inner[1] if (k % 2 == 0) == forward else inner[0] for k in range(n_turns)]
    exit_x = hi if turns[-1] == inner[1] else lo
    points = np.array([lo if forward else hi, *turns, exit_x], np.float32)
    dist = np.concatenate([[0.0], np.cumsum(np.abs(np.diff(points)))])
    end = min(start + int(np.ceil(dist[-1] / px)), n_frames)
    t = np.arange(end - start, dtype=np.float32)
    xs = np.full(n_frames, np.nan, np.float32)
    ys = np.full(n_frames, np.nan, np.float32)
    xs[start:end] = np.interp(t * px, dist, points)
    ys[start:end] = y - np.abs(np.sin(t * np.pi * 5.0 / fps)) * 0.06 * h  # bobbing stride
    shirt, trousers, skin = random_colors(rng, scene.ground)
    return Rendered([Walker(xs, ys, shirt, trousers, skin, stride_rate=0.8)], [], start, end)


def explosion(
    rng: np.random.Generator, scene: Scene, n_frames: int, fps: float, start: int, end: int
) -> Rendered:
    """A bright expanding flash, debris thrown out and falling, then fire and smoke until
    ``end``."""
    H, W = scene.background.shape[:2]
    cx, cy = _centre_point(rng, scene)
    size = min(W, H) * rng.uniform(0.3, 0.42)
    n_debris = 40
    angles = rng.uniform(np.pi * 0.05, np.pi * 0.95, n_debris)
    speeds = rng.uniform(0.4, 1.4, n_debris) * H  # pixels per second
    debris_colors = rng.choice([[40, 35, 30], [255, 200, 80], [120, 110, 100]], n_debris).astype(
        np.float32
    )
    flame_rng = np.random.default_rng(rng.integers(2**32))
    flicker = flame_rng.uniform(0.6, 1.0, (end - start, 4)).astype(np.float32)

    def paint(frame: np.ndarray, t: int) -> None:
        s = (t - start) / fps  # seconds since the blast
        flash = np.exp(-s / 0.35)
        frame += 110.0 * flash  # the whole view lights up, then fades
        _smoke_and_flames(frame, s, cx, cy, size, flicker[t - start])
        if s < 0.9:
            _fireball(frame, s, flash, cx, cy, size)
        if s < 2.0:
            _debris(frame, s, cx, cy, size, angles, speeds, debris_colors)

    return Rendered([], [Overlay(start, end, paint)], start, end)


def _smoke_and_flames(
    frame: np.ndarray, s: float, cx: float, cy: float, size: float, flicker: np.ndarray
) -> None:
    """A growing, thickening smoke cloud with four flickering flames at its base."""
    smoke_r = size * (0.5 + 0.35 * min(s / 2.0, 1.0))
    fill_disc(
        frame,
        cx,
        cy - smoke_r * 0.8,
        smoke_r,
        np.array([70, 68, 66], np.float32),
        alpha=min(0.85, 0.3 + s),
    )
    for k in range(4):
        f = flicker[k]
        fill_disc(
            frame,
            cx + (k - 1.5) * 0.18 * size,
            cy - 0.1 * size * f,
            0.16 * size * f,
            np.array([255, 120 + 100 * f, 30], np.float32),
        )


def _fireball(frame: np.ndarray, s: float, flash: float, cx: float, cy: float, size: float) -> None:
    """The blast's white-hot ball, expanding fast and fading with the flash."""
    r = size * (1.0 - np.exp(-s / 0.15))
    fill_disc(
        frame,
        cx,
        cy - 0.3 * size,
        r,
        np.array([255, 245, 210], np.float32),
        alpha=float(min(1.0, 1.6 * flash)),
    )


def _debris(
    frame: np.ndarray,
    s: float,
    cx: float,
    cy: float,
    size: float,
    angles: np.ndarray,
    speeds: np.ndarray,
    colors: np.ndarray,
) -> None:
    """Pieces thrown upwards from the blast, falling back under gravity, drawn while in view."""
    H, W = frame.shape[:2]
    dx = np.cos(angles) * speeds * s
    dy = -np.sin(angles) * speeds * s + 0.5 * 1.5 * H * s * s  # gravity pulls the debris down
    for k in np.flatnonzero((cy + dy < H) & (np.abs(dx) < W)):
        fill_disc(frame, cx + dx[k], cy - 0.3 * size + dy[k], max(1.0, size * 0.035), colors[k])


def abandoned_object(
    rng: np.random.Generator, scene: Scene, n_frames: int, fps: float, start: int, end: int
) -> Rendered:
    """Someone carries a large bright bag in, leaves it at ``start`` and walks on; it stays to the
    end."""
    drop_x, drop_y = _centre_point(rng, scene)
    h = float(scene.height_at(drop_y))
    speed = rng.uniform(*WALK_SPEED) * h / fps
    direction = rng.choice([-1.0, 1.0])
    t = np.arange(n_frames, dtype=np.float32)
    xs = (drop_x + direction * speed * (t - start)).astype(np.float32)
    ys = np.full(n_frames, drop_y, np.float32)
    off = (xs < -0.1 * scene.background.shape[1]) | (xs > 1.1 * scene.background.shape[1])
    xs[off] = np.nan
    shirt, trousers, skin = random_colors(rng, scene.ground)
    carrier = Walker(xs, ys, shirt, trousers, skin, stride_rate=1.0)
    bag = np.array(
        rng.choice([[230, 30, 30], [240, 220, 20], [30, 200, 230], [250, 130, 0]]), np.float32
    )
    bw, bh = 0.45 * h, 0.32 * h

    def paint(frame: np.ndarray, t: int) -> None:
        if t < start:  # carried: beside the carrier
            if not np.isnan(xs[t]):
                draw_box(frame, xs[t] - direction * 0.3 * h, drop_y - 0.1 * h, bw, bh, bag)
        else:
            draw_box(frame, drop_x - direction * 0.3 * h, drop_y, bw, bh, bag)

    return Rendered([carrier], [Overlay(0, n_frames, paint)], start, n_frames)


EVENTS: dict[str, Callable[..., Rendered]] = {
    "Fighting": fighting,
    "Running": running,
    "Explosion": explosion,
    "AbandonedObject": abandoned_object,
}
# Events that last until the end of the video cannot be followed by a second event.
PERSISTENT = frozenset({"AbandonedObject"})
