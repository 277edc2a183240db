"""PNG pictures of results, drawn with Pillow (no plotting library needed)."""

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CELL = 64
MARGIN = 110


def render_confusion_matrix(matrix, class_names, path):
    """A confusion matrix as a PNG: rows true, columns predicted, cells shaded by row-normalised count."""
    matrix = np.asarray(matrix)
    n = len(class_names)
    image = Image.new("RGB", (MARGIN + n * CELL + 10, MARGIN + n * CELL + 10), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    for i in range(n):
        draw.text((4, MARGIN + i * CELL + CELL // 2 - 6), class_names[i][:16], fill="black", font=font)
        draw.text((MARGIN + i * CELL + 4, MARGIN - 20), class_names[i][:9], fill="black", font=font)
        for j in range(n):
            shade = int(255 - 200 * share[i, j])
            box = [MARGIN + j * CELL, MARGIN + i * CELL, MARGIN + (j + 1) * CELL - 1, MARGIN + (i + 1) * CELL - 1]
            draw.rectangle(box, fill=(shade, shade, 255), outline="grey")
            draw.text((box[0] + CELL // 2 - 10, box[1] + CELL // 2 - 6), str(int(matrix[i, j])),
                      fill="black" if shade > 120 else "white", font=font)
    draw.text((MARGIN, 8), "predicted ->", fill="black", font=font)
    draw.text((4, MARGIN - 20), "true", fill="black", font=font)
    image.save(path)
    return path
