"""Depth proposals: class-agnostic boxes for an R-CNN-style person detector on depth frames.

Selective search and edge boxes are built for colour; in depth, people already stand apart from their surroundings.
After Gupta et al. (ECCV 2014): drop holes and the floor (surface normals along the camera's y axis), split what is
left at depth discontinuities into connected segments, and box each mid-sized segment at a few margins. TensorFlow
ops only, on a copy of the frame about 60 rows high, so it is cheap and exports inside a SavedModel, or converts to
ONNX (tf2onnx), with unknown batch, height and width.
"""

import tensorflow as tf

# Working pixels. Thinner segments are seams where surfaces meet (floor at a wall) or strips of a wall seen edge-on
# (steps above edge_threshold_m from column to column), never a person.
MIN_THICKNESS_PX = 1.5


def _shift(x, axis, step):
    """x moved one pixel along axis (1 rows, 2 columns): out[i] = x[i + step], zero-filled at the border."""
    size = tf.shape(x)[axis]
    start = tf.maximum(step, 0)
    kept = tf.gather(x, tf.range(start, size - 1 + start), axis=axis)
    pad = [[0, 0]] * len(x.shape)
    pad[axis] = [0, 1] if step > 0 else [1, 0]
    return tf.pad(kept, pad)


def _downscale(depth_m, intrinsics, work_height):
    """Nearest-neighbour copy about `work_height` rows high, aspect kept: its 3D points [B, h, w, 3] and valid
    [B, h, w]."""
    height, width = tf.shape(depth_m)[1], tf.shape(depth_m)[2]
    h = tf.minimum(height, work_height)
    w = tf.maximum(1, tf.cast(tf.round(tf.cast(width * h, tf.float32) / tf.cast(height, tf.float32)), tf.int32))
    # Source pixel of each working pixel, so the frame's own intrinsics back-project it (pixel centres at +0.5).
    rows = tf.floor((tf.range(h, dtype=tf.float32) + 0.5) * tf.cast(height / h, tf.float32))
    cols = tf.floor((tf.range(w, dtype=tf.float32) + 0.5) * tf.cast(width / w, tf.float32))
    depth = tf.gather(tf.gather(depth_m, tf.cast(rows, tf.int32), axis=1), tf.cast(cols, tf.int32), axis=2)
    valid = tf.math.is_finite(depth) & (depth > 0)
    z = tf.where(valid, depth, 0.0)
    fx, fy, cx, cy = tf.unstack(tf.reshape(intrinsics, [-1, 4, 1, 1]), axis=1)  # each [B, 1, 1]
    x = (cols[None, None, :] + 0.5 - cx) / fx * z
    y = (rows[None, :, None] + 0.5 - cy) / fy * z
    return tf.stack([x, y, z], -1), valid


def _cross(a, b):
    """a x b over the last axis, written out: ONNX has no cross-product op."""
    (ax, ay, az), (bx, by, bz) = tf.unstack(a, axis=-1), tf.unstack(b, axis=-1)
    return tf.stack([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx], -1)


def _unit(vectors):
    """`tf.math.l2_normalize` over the last axis, on the vectors as rows of a matrix: TFLite's kernel takes at
    most 4 dimensions."""
    return tf.reshape(tf.math.l2_normalize(tf.reshape(vectors, [-1, vectors.shape[-1]]), -1), tf.shape(vectors))


def _floor(points, valid, floor_cos):
    """Pixels whose normal is within acos(floor_cos) of the y axis.

    Each pixel takes the unit normal of its neighbour triangle (right-down, down-left, left-up, up-right) with the
    smallest depth steps, so that pixels at an object's edge use their own surface rather than one across the
    discontinuity; normals are then averaged over 3 x 3 pixels against sensor noise.
    """
    steps, costs = [], []
    for axis, step in ((2, 1), (1, 1), (2, -1), (1, -1)):  # right, down, left, up
        delta = _shift(points, axis, step) - points
        steps.append(delta)
        costs.append(tf.where(valid & _shift(valid, axis, step), tf.abs(delta[..., 2]), float("inf")))
    normals = _unit(tf.stack([_cross(steps[i], steps[(i + 1) % 4]) for i in range(4)], -2))
    cost = tf.stack([tf.maximum(costs[i], costs[(i + 1) % 4]) for i in range(4)], -1)
    best = (cost <= tf.reduce_min(cost, -1, keepdims=True)) & tf.math.is_finite(cost)
    best = tf.cast(best, tf.float32) / tf.maximum(tf.reduce_sum(tf.cast(best, tf.float32), -1, keepdims=True), 1.0)
    mean = tf.nn.avg_pool2d(tf.reduce_sum(normals * best[..., None], -2), 3, 1, "SAME")
    return valid & (tf.abs(mean[..., 1]) >= floor_cos * tf.norm(mean, axis=-1) + 1e-12)


def _components(z, foreground, edge_threshold_m):
    """Labels [B, h, w] of 4-connected segments, joined where |dz| < edge_threshold_m, background n + 1: min-label
    propagation with pointer jumping, until nothing changes."""
    batch, h, w = tf.shape(foreground)[0], tf.shape(foreground)[1], tf.shape(foreground)[2]
    n = h * w
    moves = [(axis, step) for axis in (1, 2) for step in (1, -1)]
    joined = [foreground & _shift(foreground, a, s) & (tf.abs(_shift(z, a, s) - z) < edge_threshold_m)
              for a, s in moves]
    background = n + 1
    start = tf.where(foreground, tf.reshape(tf.range(1, n + 1), [1, h, w]), background)

    def step(labels, _):
        merged = labels
        for (a, s), join in zip(moves, joined):
            merged = tf.minimum(merged, tf.where(join, _shift(labels, a, s), background))
        flat = tf.reshape(merged, [batch, n])
        jumped = tf.gather(flat, tf.minimum(flat, n) - 1, batch_dims=1)  # the label of the pixel a label names
        merged = tf.where(foreground, tf.reshape(tf.minimum(flat, jumped), [batch, h, w]), background)
        merged = tf.ensure_shape(merged, labels.shape)  # keep a static batch size static through the loop
        return merged, tf.reduce_any(merged != labels)

    # The bound never binds (a label spreads at least a pixel an iteration). Not `n` itself: tf2onnx would pass
    # the int64 trip count where the loop body reads n as int32.
    bound = tf.size(z[:1], out_type=tf.int32)  # 0 for an empty batch
    labels, _ = tf.while_loop(lambda _, changed: changed, step, (start, tf.constant(True)), maximum_iterations=bound)
    return labels


def _segment_extents_by_segment_ops(ids, rows, cols, segments, h, w):
    """(pixel count, top, left, bottom + 1, right + 1) [segments] of each segment id's pixels (empty segments:
    count 0)."""
    del h, w  # the same arguments as `_segment_extents`

    def per_segment(reduce, values):
        return reduce(values, ids, segments)

    return (per_segment(tf.math.unsorted_segment_sum, tf.ones_like(rows)),
            per_segment(tf.math.unsorted_segment_min, rows), per_segment(tf.math.unsorted_segment_min, cols),
            per_segment(tf.math.unsorted_segment_max, rows) + 1, per_segment(tf.math.unsorted_segment_max, cols) + 1)


def _segment_extents(ids, rows, cols, segments, h, w):
    """What `_segment_extents_by_segment_ops` gives, read off histograms [segments, h] and [segments, w] of the rows
    and columns each segment covers (empty segments: count 0, bottom < top).

    Scatter-add and reductions, which tf2onnx and TFLite convert: tf2onnx cannot convert unsorted segment min / max
    for integers, and for floats it builds a [segments, largest segment] grid, quadratic in the frame's pixels. The
    histograms cost more (the proposals took ~1.3x as long), so only exports use them.
    """
    def histogram(positions, size):
        return tf.tensor_scatter_nd_add(tf.zeros([segments, size], tf.int32), tf.stack([ids, positions], -1),
                                        tf.ones_like(ids))

    def span(covered, size):
        at = tf.range(size)[None, :]
        return tf.reduce_min(tf.where(covered, at, size), -1), tf.reduce_max(tf.where(covered, at, -1), -1) + 1

    per_row, per_col = histogram(rows, h), histogram(cols, w)
    (top, bottom), (left, right) = span(per_row > 0, h), span(per_col > 0, w)
    return tf.reduce_sum(per_row, -1), top, left, bottom, right


def depth_proposals(depth_m, intrinsics, *, max_segments=16, margins=(0.0, 0.1, 0.2), edge_threshold_m=0.1,
                    floor_cos=0.85, min_area_fraction=0.002, max_area_fraction=0.5, work_height=60, portable=False):
    """Boxes around the depth segments of a batch of frames.

    Args:
        depth_m: float32 [B, H, W], metres, 0 = no reading.
        intrinsics: float32 [B, 4], (fx, fy, cx, cy) in pixels of the H x W frame; camera x right, y down, z forward.
        max_segments: the largest segments kept (by pixel count), each boxed at every margin.
        margins: growth of a segment's box on every side, as a share of its height and width (clipped to the frame).
        edge_threshold_m: depth step that separates two neighbouring pixels into different segments.
        floor_cos: pixels whose |normal_y| reaches this are floor (background).
        min_area_fraction, max_area_fraction: segment sizes kept, as shares of the frame's pixels.
        work_height: rows of the nearest-neighbour copy the segments are found on.
        portable: segment extents in ops that tf2onnx and TFLite convert (for .onnx / .tflite exports; slower).

    Returns:
        (boxes [B, max_segments * len(margins), 4] float32 normalised (ymin, xmin, ymax, xmax) in [0, 1],
        valid [B, max_segments * len(margins)] bool). Segment-major (a segment's margins in a row), largest segment
        first, valid ones first; padding rows are zeros with valid False.
    """
    depth_m = tf.convert_to_tensor(depth_m, tf.float32)
    points, valid = _downscale(depth_m, tf.convert_to_tensor(intrinsics, tf.float32), work_height)
    foreground = valid & ~_floor(points, valid, floor_cos)
    labels = _components(points[..., 2], foreground, edge_threshold_m)

    batch, h, w = tf.shape(labels)[0], tf.shape(labels)[1], tf.shape(labels)[2]
    n = h * w
    # One segment id per (frame, label); background pixels go to a last, dropped id.
    ids = tf.where(foreground, labels - 1 + tf.range(batch)[:, None, None] * n, batch * n)
    ids = tf.reshape(ids, [-1])
    extents = _segment_extents if portable else _segment_extents_by_segment_ops
    rows = tf.reshape(tf.broadcast_to(tf.range(h)[None, :, None], [batch, h, w]), [-1])
    cols = tf.reshape(tf.broadcast_to(tf.range(w)[None, None, :], [batch, h, w]), [-1])
    count, top, left, bottom, right = (tf.reshape(value[:-1], [batch, n])
                                       for value in extents(ids, rows, cols, batch * n + 1, h, w))
    boxes = tf.cast(tf.stack([top, left, bottom, right], -1), tf.float32) / tf.cast(tf.stack([h, w, h, w]), tf.float32)
    area = tf.cast(count, tf.float32) / tf.cast(n, tf.float32)
    thickness = tf.cast(count, tf.float32) / tf.cast(tf.maximum(bottom - top, right - left), tf.float32)
    keep = (count > 0) & (area >= min_area_fraction) & (area <= max_area_fraction) & (thickness >= MIN_THICKNESS_PX)

    # Pad so top_k has max_segments candidates even on a tiny frame.
    score = tf.pad(tf.where(keep, count, -1), [[0, 0], [0, max_segments]], constant_values=-1)
    order = tf.math.top_k(score, k=max_segments).indices
    keep = tf.gather(tf.pad(keep, [[0, 0], [0, max_segments]]), order, batch_dims=1)
    boxes = tf.gather(tf.pad(boxes, [[0, 0], [0, max_segments], [0, 0]]), order, batch_dims=1)

    extent = tf.concat([boxes[..., 2:] - boxes[..., :2]] * 2, -1) * [-1.0, -1.0, 1.0, 1.0]
    grown = tf.stack([tf.clip_by_value(boxes + margin * extent, 0.0, 1.0) for margin in margins], 2)
    grown = tf.where(keep[:, :, None, None], grown, 0.0)
    count_out = max_segments * len(margins)
    return (tf.reshape(grown, [batch, count_out, 4]),
            tf.reshape(tf.repeat(keep, len(margins), axis=1), [batch, count_out]))
