"""Procedural road scenes with a known depth map (numpy), for `synthetic_depth_scenes`."""

import numpy as np

CAMERA_HEIGHT = 1.6  # metres above the road
HORIZONTAL_FOV = np.deg2rad(50.0)  # about the Waymo FRONT camera's
FOG_DISTANCE = 120.0  # aerial perspective: colour fades to the sky's over this distance
SKY = np.array([0.70, 0.80, 0.95])


def render_scene(rng, height, width, far_probability, row_spacing, max_range):
    """One scene: (image float32 [H, W, 3] in [0, 1], depth float32 [H, W], 0 = no LiDAR return).

    A pinhole camera (focal f, centre (W/2, horizon row)) over a flat road; a row
    of buildings (a fronto-parallel wall) closes the road at distance D_back,
    drawn from U(60, 95) m with probability `far_probability` (the rare far
    scenes) and U(22, 45) m otherwise; 1-4 boxes (vehicles) stand on the road
    at U(6, 35) m. Depth is the distance along the optical axis: f·h/(v − v_0) for
    road row v, D for a wall or box face. Colours fade towards the sky colour with
    distance (aerial perspective) and textures have a fixed size in metres (road
    dashes, windows), so depth can be read from the image. The LiDAR keeps every
    `row_spacing`-th row (random phase), each pixel with probability
    0.75·(1 − 0.6·d/max_range), and nothing beyond `max_range` or in the sky.
    """
    focal = (width / 2.0) / np.tan(HORIZONTAL_FOV / 2.0)
    horizon = height * rng.uniform(0.40, 0.50)
    cx = width / 2.0
    rows = np.arange(height)[:, None] + 0.5
    cols = np.arange(width)[None, :] + 0.5
    depth = np.full((height, width), np.inf)
    albedo = np.broadcast_to(SKY, (height, width, 3)).copy()

    # Road: a plane CAMERA_HEIGHT below the camera, visible below the horizon.
    below = rows > horizon + 1e-6
    road_depth = np.where(below, focal * CAMERA_HEIGHT / np.maximum(rows - horizon, 1e-6), np.inf)
    road_depth = np.broadcast_to(road_depth, (height, width))
    road = np.isfinite(road_depth)
    road_depth = np.where(road, road_depth, 0.0)
    lateral = (cols - cx) * road_depth / focal  # metres left/right of the camera axis
    grey = rng.uniform(0.25, 0.4)
    road_colour = np.full((height, width, 3), grey)
    dashes = (np.abs(lateral) < 0.08) & (np.mod(road_depth, 6.0) < 3.0)  # centre-line dashes, 3 m long
    road_colour[dashes] = 0.95
    shoulder = np.abs(lateral) > 5.0
    road_colour[shoulder] = np.array([0.35, 0.5, 0.25]) * rng.uniform(0.8, 1.2)  # grass verges
    depth = np.where(road, road_depth, depth)  # the sky stays at infinity
    albedo = np.where(road[..., None], road_colour, albedo)

    # Buildings closing the road at D_back, from the road up to 8-20 m.
    far = rng.uniform() < far_probability
    back = rng.uniform(60.0, 95.0) if far else rng.uniform(22.0, 45.0)
    top = horizon - focal * (rng.uniform(8.0, 20.0) - CAMERA_HEIGHT) / back
    bottom = horizon + focal * CAMERA_HEIGHT / back
    wall = (rows >= top) & (rows < bottom) & np.ones_like(cols, dtype=bool)
    wall &= back < depth
    wall_colour = np.broadcast_to(rng.uniform(0.3, 0.9, size=3), (height, width, 3)).copy()
    metres_x = (cols - cx) * back / focal
    metres_y = (horizon - rows) * back / focal + CAMERA_HEIGHT
    windows = (np.mod(metres_x, 3.0) < 1.2) & (np.mod(metres_y, 3.0) < 1.5)  # 1.2 x 1.5 m windows every 3 m
    windows = np.broadcast_to(windows, (height, width))
    wall_colour[windows] *= 0.35
    depth = np.where(wall, back, depth)
    albedo = np.where(wall[..., None], wall_colour, albedo)

    # Vehicles: boxes on the road, drawn far to near.
    for distance in sorted(rng.uniform(6.0, 35.0, size=rng.integers(1, 5)), reverse=True):
        if distance >= back:
            continue
        half_width = rng.uniform(0.9, 1.25)
        centre = rng.uniform(-7.0, 7.0)
        box_height = rng.uniform(1.4, 2.2)
        left, right = cx + focal * (centre - half_width) / distance, cx + focal * (centre + half_width) / distance
        box_top = horizon - focal * (box_height - CAMERA_HEIGHT) / distance
        box_bottom = horizon + focal * CAMERA_HEIGHT / distance
        box = (rows >= box_top) & (rows < box_bottom) & (cols >= left) & (cols < right)
        box &= distance < depth
        colour = rng.uniform(0.05, 1.0, size=3)
        depth = np.where(box, distance, depth)
        albedo = np.where(box[..., None], colour, albedo)

    visibility = np.exp(-np.where(np.isfinite(depth), depth, 1e9) / FOG_DISTANCE)[..., None]
    image = albedo * visibility + SKY * (1.0 - visibility)
    image = image * rng.uniform(0.8, 1.1) + rng.normal(0.0, 0.02, size=image.shape)
    image = np.clip(image, 0.0, 1.0).astype(np.float32)

    scanline = (np.arange(height) % row_spacing) == rng.integers(row_spacing)
    finite = np.isfinite(depth) & (depth <= max_range)
    keep_probability = 0.75 * (1.0 - 0.6 * np.where(finite, depth, max_range) / max_range)
    returns = finite & scanline[:, None] & (rng.uniform(size=(height, width)) < keep_probability)
    sparse = np.where(returns, depth, 0.0).astype(np.float32)
    return image, sparse
