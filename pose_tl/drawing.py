"""Pictures of depth and labels with Pillow: colour-mapped depth, invalid pixels marked, skeletons and boxes."""

import numpy as np
from PIL import Image, ImageDraw, ImageFont

INVALID_COLOUR = (90, 0, 90)  # dark magenta: no depth reading
VISIBLE_COLOUR = (255, 255, 255)
OCCLUDED_COLOUR = (255, 200, 0)
PERSON_COLOURS = ((0, 255, 120), (255, 80, 80), (80, 160, 255), (255, 0, 255), (255, 255, 0), (0, 255, 255))


def colourise_depth(depth_m, min_m=0.5, max_m=6.0):
    """float metres [H, W] -> RGB uint8 (near warm, far cool); invalid pixels in `INVALID_COLOUR`."""
    t = np.clip((np.nan_to_num(depth_m) - min_m) / (max_m - min_m), 0, 1)
    rgb = np.stack([1.0 - t, 1.0 - np.abs(2 * t - 1), t], axis=-1) * 0.85 + 0.05
    rgb = (rgb * 255).astype(np.uint8)
    rgb[~(np.isfinite(depth_m) & (depth_m > 0))] = INVALID_COLOUR
    return rgb


def draw_people(image, joints_2d, visibility, boxes, limbs, scale=1.0, labels=None):
    """Draw skeletons (limbs between in-frame joints), joints (filled: visible; ringed: occluded) and boxes."""
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    for person in range(len(joints_2d)):
        colour = PERSON_COLOURS[person % len(PERSON_COLOURS)]
        points = np.asarray(joints_2d[person]) * scale
        for a, b in limbs:
            if visibility[person][a] > 0 and visibility[person][b] > 0:
                draw.line([tuple(points[a]), tuple(points[b])], fill=colour, width=2)
        for j, (x, y) in enumerate(points):
            if visibility[person][j] == 0:
                continue
            r = 3
            if visibility[person][j] == 2:
                draw.ellipse([x - r, y - r, x + r, y + r], fill=VISIBLE_COLOUR, outline=colour)
            else:
                draw.ellipse([x - r, y - r, x + r, y + r], outline=OCCLUDED_COLOUR, width=2)
        if boxes is not None and len(boxes) > person:
            x, y, w, h = np.asarray(boxes[person]) * scale
            draw.rectangle([x, y, x + w, y + h], outline=colour, width=1)
            if labels is not None:
                draw.text((x + 2, y + 1), labels[person], fill=colour, font=font)
    return image


def contact_sheet(tiles, columns, path, caption=None):
    """Lay PIL images out in a grid and save as PNG."""
    width, height = tiles[0].size
    rows = (len(tiles) + columns - 1) // columns
    top = 18 if caption else 0
    sheet = Image.new("RGB", (columns * width, rows * height + top), (20, 20, 20))
    if caption:
        ImageDraw.Draw(sheet).text((4, 3), caption, fill=(230, 230, 230), font=ImageFont.load_default())
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % columns) * width, top + (i // columns) * height))
    sheet.save(path)
    return path
