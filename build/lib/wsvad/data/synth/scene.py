"""Drawing a fixed-camera scene with numpy: textured background, walkers, lighting drift, sensor
noise.

Everything is vectorised per frame chunk (background x gain + noise for many frames at once) or per
sprite window (a person is three ellipses evaluated on its bounding box only), so a 160x120 video of
150 frames renders in tens of milliseconds. Coordinates are floats in pixels; ``y`` is where the
feet are, and a person's height grows towards the bottom of the frame (a camera looking down a
street).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Walking speed in person-heights per second: 1.2-1.5 m/s for a 1.7 m person.
WALK_SPEED = (0.6, 0.9)
NOISE_BANK = 8  # frames of pre-drawn sensor noise, cycled; cheaper than fresh noise per frame


@dataclass
class Scene:
    """One camera: its background and how people appear in it."""

    background: np.ndarray  # (H, W, 3) float32, 0..255
    horizon: float  # y (pixels) of the far edge of the walkable ground
    person_height: float  # height in pixels of a person at the bottom of the frame

    @property
    def ground(self) -> np.ndarray:
        """Mean colour of the walkable ground, which clothes must stand out from."""
        return self.background[int(self.horizon) :].mean(axis=(0, 1))

    def height_at(self, y: np.ndarray | float) -> np.ndarray | float:
        """Apparent person height at foot position ``y`` (linear perspective, 45% at the
        horizon)."""
        H = self.background.shape[0]
        t = np.clip((np.asarray(y) - self.horizon) / max(H - self.horizon, 1.0), 0.0, 1.0)
        return self.person_height * (0.45 + 0.55 * t)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Value noise: a coarse random grid upsampled bilinearly to (h, w), values in [0, 1]."""
    gh, gw = h // cell + 2, w // cell + 2
    grid = rng.random((gh, gw), dtype=np.float32)
    ys = np.linspace(0, gh - 1.001, h, dtype=np.float32)
    xs = np.linspace(0, gw - 1.001, w, dtype=np.float32)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    a, b = grid[y0][:, x0], grid[y0][:, x0 + 1]
    c, d = grid[y0 + 1][:, x0], grid[y0 + 1][:, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def build_scene(rng: np.random.Generator, width: int, height: int) -> Scene:
    """A random street-like view: sky or wall band with buildings, textured ground, a kerb line."""
    H, W = height, width
    horizon = H * rng.uniform(0.3, 0.42)
    img = np.empty((H, W, 3), np.float32)
    ground = np.array(rng.uniform([90, 90, 85], [150, 145, 135]), np.float32)
    wall = np.array(rng.uniform([60, 70, 90], [150, 160, 190]), np.float32)
    rows = np.arange(H, dtype=np.float32)[:, None, None]
    img[:] = np.where(rows < horizon, wall, ground * (0.8 + 0.3 * rows / H))
    # Buildings: a row of facades with window grids above the horizon.
    x = 0.0
    while x < W:
        bw = rng.uniform(0.12, 0.3) * W
        top = rng.uniform(0.0, horizon * 0.6)
        color = rng.uniform(40, 200, 3).astype(np.float32)
        x0, x1, y0, y1 = int(x), int(min(W, x + bw)), int(top), int(horizon)
        img[y0:y1, x0:x1] = color
        step = max(3, int(H / 24))
        win = color * 0.45 + rng.uniform(0, 60)
        for wy in range(y0 + step // 2, y1 - step, step * 2):
            img[wy : wy + step, x0 + 2 : x1 - 2 : step * 2] = win
        x += bw + rng.uniform(0, 0.05) * W
    # Ground texture (paving, stains) and a kerb line across the street.
    texture = _smooth_noise(rng, H, W, max(2, H // 16)) - 0.5
    fine = _smooth_noise(rng, H, W, 2) - 0.5
    img += (texture * 50 + fine * 18)[..., None] * (rows >= horizon)
    kerb = int(horizon + (H - horizon) * rng.uniform(0.35, 0.6))
    img[kerb : kerb + max(1, H // 60)] = ground * 0.55
    return Scene(np.clip(img, 0, 255), horizon, H * rng.uniform(0.3, 0.36))


def render_base(
    scene: Scene, gains: np.ndarray, noise: np.ndarray, frame_ids: np.ndarray
) -> np.ndarray:
    """Frames ``frame_ids`` of the empty scene: background x lighting gain + sensor noise.

    Args:
        gains: ``[n_frames]`` lighting gain of every frame of the video.
        noise: ``[NOISE_BANK, H, W, 1]`` float32 noise bank.
        frame_ids: ``[F]`` frame indices to render.

    Returns:
        float32 ``[F, H, W, 3]``.
    """
    picks = (frame_ids * 5) % noise.shape[0]  # stride 5 so consecutive frames never share noise
    return scene.background[None] * gains[frame_ids, None, None, None] + noise[picks]


def lighting_gains(rng: np.random.Generator, n_frames: int, fps: float) -> np.ndarray:
    """Slow lighting drift (clouds, auto-exposure): a sum of two sinusoids around 1, per frame."""
    t = np.arange(n_frames) / fps
    gain = np.ones(n_frames)
    for period, amp in (
        (rng.uniform(6, 14), rng.uniform(0.03, 0.08)),
        (rng.uniform(2, 5), rng.uniform(0.005, 0.02)),
    ):
        gain += amp * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    return gain.astype(np.float32)


def noise_bank(rng: np.random.Generator, width: int, height: int, sigma: float = 2.5) -> np.ndarray:
    """``[NOISE_BANK, H, W, 1]`` grey sensor noise."""
    return (rng.standard_normal((NOISE_BANK, height, width, 1), dtype=np.float32) * sigma).astype(
        np.float32
    )


def _fill_ellipse(
    frame: np.ndarray, cx: float, cy: float, rx: float, ry: float, color: np.ndarray
) -> None:
    H, W = frame.shape[:2]
    x0, x1 = max(int(cx - rx), 0), min(int(cx + rx) + 2, W)
    y0, y1 = max(int(cy - ry), 0), min(int(cy + ry) + 2, H)
    if x0 >= x1 or y0 >= y1 or rx <= 0 or ry <= 0:
        return
    yy, xx = np.ogrid[y0:y1, x0:x1]
    inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
    frame[y0:y1, x0:x1][inside] = color


def fill_disc(
    frame: np.ndarray, cx: float, cy: float, r: float, color: np.ndarray, alpha: float = 1.0
) -> None:
    """Blend a disc of ``color`` into ``frame`` with opacity ``alpha`` (soft edge of one pixel)."""
    H, W = frame.shape[:2]
    x0, x1 = max(int(cx - r) - 1, 0), min(int(cx + r) + 2, W)
    y0, y1 = max(int(cy - r) - 1, 0), min(int(cy + r) + 2, H)
    if x0 >= x1 or y0 >= y1 or r <= 0:
        return
    yy, xx = np.ogrid[y0:y1, x0:x1]
    cover = np.clip(r + 0.5 - np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2), 0.0, 1.0)[..., None] * alpha
    window = frame[y0:y1, x0:x1]
    window += (np.asarray(color, np.float32) - window) * cover


def draw_person(
    frame: np.ndarray,
    x: float,
    y: float,
    h: float,
    shirt: np.ndarray,
    trousers: np.ndarray,
    skin: np.ndarray,
    phase: float,
) -> None:
    """A person-like blob standing with feet at ``(x, y)``, ``h`` pixels tall; ``phase`` swings the
    legs."""
    swing = 0.09 * h * np.sin(phase)
    for side in (-1.0, 1.0):
        _fill_ellipse(frame, x + side * swing, y - 0.22 * h, 0.065 * h, 0.23 * h, trousers)
    _fill_ellipse(frame, x, y - 0.58 * h, 0.17 * h, 0.22 * h, shirt)
    _fill_ellipse(frame, x, y - 0.88 * h, 0.085 * h, 0.1 * h, skin)


def draw_box(frame: np.ndarray, x: float, y: float, w: float, h: float, color: np.ndarray) -> None:
    """An axis-aligned box with its bottom centre at ``(x, y)``, darker on its lower third."""
    H, W = frame.shape[:2]
    x0, x1 = max(int(x - w / 2), 0), min(int(x + w / 2) + 1, W)
    y0, y1 = max(int(y - h), 0), min(int(y) + 1, H)
    frame[y0:y1, x0:x1] = color
    frame[max(y1 - max(1, int(h / 3)), y0) : y1, x0:x1] = color * 0.6


@dataclass
class Walker:
    """A person following a track: per-frame positions (NaN where absent) and appearance."""

    xs: np.ndarray  # [n_frames] foot x, NaN when not in view
    ys: np.ndarray  # [n_frames] foot y
    shirt: np.ndarray
    trousers: np.ndarray
    skin: np.ndarray
    stride_rate: float  # leg cycles per pixel travelled, scaled by height when drawn
    scale: float = 1.0  # size relative to the scene's perspective height
    _travelled: np.ndarray | None = field(default=None, init=False, repr=False)

    def depth(self, t: int) -> float:
        """Foot y at frame ``t``: nearer people (larger y) are drawn later, over farther ones."""
        return -1.0 if np.isnan(self.ys[t]) else float(self.ys[t])

    def draw(self, frame: np.ndarray, t: int, scene: Scene) -> None:
        x, y = self.xs[t], self.ys[t]
        if np.isnan(x):
            return
        if self._travelled is None:
            # The legs swing with distance travelled, so a runner's legs move faster; computed once
            # per video because events edit the tracks before rendering starts.
            steps = np.nan_to_num(np.hypot(np.diff(self.xs), np.diff(self.ys)))
            self._travelled = np.concatenate([[0.0], np.cumsum(steps)])
        h = float(scene.height_at(y)) * self.scale
        draw_person(
            frame,
            x,
            y,
            h,
            self.shirt,
            self.trousers,
            self.skin,
            self._travelled[t] / h * 2 * np.pi * self.stride_rate,
        )


def random_colors(
    rng: np.random.Generator, ground: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shirt, trousers and skin colours of one person; the shirt contrasts with the ground.

    Everyone gets a contrasting shirt, walkers and event actors alike, so colour says nothing about
    the label while a low-contrast runner cannot vanish into the paving.
    """
    shirt = rng.uniform(20, 235, 3).astype(np.float32)
    for _ in range(16):  # bounded: the draw stays deterministic and always ends
        if np.linalg.norm(shirt - ground) >= 110:
            break
        shirt = rng.uniform(20, 235, 3).astype(np.float32)
    trousers = rng.uniform(15, 90, 3).astype(np.float32)
    skin = np.array(
        rng.choice([[224, 172, 140], [198, 134, 66], [141, 85, 36], [255, 205, 170]]), np.float32
    )
    return shirt, trousers, skin


def walking_track(
    rng: np.random.Generator,
    scene: Scene,
    n_frames: int,
    fps: float,
    start: int,
    speed_factor: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Foot positions of someone crossing the view from one side at walking speed, from frame
    ``start``.

    The track enters at a frame edge, heads to the other side with a slight diagonal and a gentle
    sway, and is NaN before ``start`` and after leaving the frame.
    """
    H, W = scene.background.shape[:2]
    xs = np.full(n_frames, np.nan, np.float32)
    ys = np.full(n_frames, np.nan, np.float32)
    direction = rng.choice([-1.0, 1.0])
    y0 = rng.uniform(scene.horizon + 0.1 * (H - scene.horizon), H - 2)
    y1 = np.clip(y0 + rng.uniform(-0.25, 0.25) * (H - scene.horizon), scene.horizon + 4, H - 2)
    x_start = -0.05 * W if direction > 0 else 1.05 * W
    n = n_frames - start
    if n <= 0:
        return xs, ys
    speed = rng.uniform(*WALK_SPEED) * speed_factor  # person heights per second
    steps = np.arange(n, dtype=np.float32)
    ys_path = y0 + (y1 - y0) * np.clip(steps / max(n, 1), 0, 1)
    px_per_frame = speed * scene.height_at(ys_path) / fps
    xs_path = x_start + direction * np.cumsum(px_per_frame)
    xs_path += np.sin(steps / fps * rng.uniform(0.5, 1.5) * 2 * np.pi) * 0.01 * W
    visible = (xs_path > -0.1 * W) & (xs_path < 1.1 * W)
    xs[start:] = np.where(visible, xs_path, np.nan)
    ys[start:] = np.where(visible, ys_path, np.nan)
    return xs, ys


def random_walker(
    rng: np.random.Generator, scene: Scene, n_frames: int, fps: float, start: int
) -> Walker:
    """A pedestrian entering at frame ``start`` (negative starts mid-crossing at frame 0)."""
    xs, ys = walking_track(rng, scene, n_frames - min(start, 0), fps, max(start, 0))
    if start < 0:
        xs, ys = xs[-start:], ys[-start:]
    shirt, trousers, skin = random_colors(rng, scene.ground)
    return Walker(
        xs,
        ys,
        shirt,
        trousers,
        skin,
        stride_rate=rng.uniform(0.9, 1.2),
        scale=rng.uniform(0.9, 1.1),
    )
