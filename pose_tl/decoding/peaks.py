"""Joint candidates: local maxima of each heatmap (3x3 max-pool suppression), thresholded, sub-pixel refined."""

import tensorflow as tf


def find_peaks(heatmaps, threshold=0.1, max_peaks=8):
    """Top `max_peaks` local maxima per joint map.

    Args:
        heatmaps: [N, H, W, J] float.
        threshold: minimum heatmap value of a peak.
        max_peaks: candidates kept per joint (the most confident).

    Returns:
        (xy [N, J, K, 2] output-pixel coordinates of the peak centres, sub-pixel refined by a parabola through the
        log of the neighbours; scores [N, J, K], 0 where there is no peak).
    """
    heatmaps = tf.cast(heatmaps, tf.float32)
    shape = tf.shape(heatmaps)
    n, height, width, joints = shape[0], shape[1], shape[2], shape[3]
    # A tiny ramp breaks ties, so a plateau (a joint on a pixel corner) gives one peak, not four.
    ramp = tf.cast(tf.range(height * width), tf.float32) / tf.cast(height * width, tf.float32) * 1e-5
    ranked = heatmaps + tf.reshape(ramp, [1, height, width, 1])
    pooled = tf.nn.max_pool2d(ranked, ksize=3, strides=1, padding="SAME")
    peaks = tf.where((ranked >= pooled) & (heatmaps > threshold), heatmaps, tf.zeros_like(heatmaps))
    flat = tf.reshape(tf.transpose(peaks, [0, 3, 1, 2]), [n, joints, height * width])
    # K is fixed when the graph is built (decoding unrolls its loops over it): maps of known size bound it
    static_pixels = (heatmaps.shape[1] or 0) * (heatmaps.shape[2] or 0)
    k = min(max_peaks, static_pixels) if static_pixels else max_peaks
    scores, index = tf.math.top_k(flat, k=k)
    y = index // width
    x = index % width

    padded = tf.pad(tf.transpose(heatmaps, [0, 3, 1, 2]), [[0, 0], [0, 0], [1, 1], [1, 1]], mode="SYMMETRIC")
    batch = tf.broadcast_to(tf.range(n)[:, None, None], tf.shape(index))
    joint = tf.broadcast_to(tf.range(joints)[None, :, None], tf.shape(index))

    def value(dy, dx):
        return tf.gather_nd(padded, tf.stack([batch, joint, y + 1 + dy, x + 1 + dx], axis=-1))

    centre, left, right, up, down = value(0, 0), value(0, -1), value(0, 1), value(-1, 0), value(1, 0)
    # A parabola through the log of the samples is exact for a Gaussian peak (the targets' shape); through the
    # samples themselves it is biased towards the pixel centre by up to a tenth of a pixel.
    left, centre, right, up, down = (tf.math.log(tf.maximum(v, 1e-4)) for v in (left, centre, right, up, down))
    offset_x = _parabola_offset(left, centre, right)
    offset_y = _parabola_offset(up, centre, down)
    xy = tf.stack([tf.cast(x, tf.float32) + 0.5 + offset_x, tf.cast(y, tf.float32) + 0.5 + offset_y], axis=-1)
    return xy, scores


def _parabola_offset(before, centre, after):
    """Vertex of the parabola through three samples, relative to the centre, clipped to half a pixel."""
    curvature = before - 2.0 * centre + after
    offset = tf.math.divide_no_nan(0.5 * (before - after), curvature)
    return tf.clip_by_value(offset, -0.5, 0.5)
