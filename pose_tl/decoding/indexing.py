"""Reading tensors at per-frame indices with plain gather_nd (no batch_dims): TFLite and tf2onnx convert it as is;
and per-joint tables that decoding steps update either unrolled or inside a `tf.while_loop`."""

import tensorflow as tf


def pixel_indices(points, height, width):
    """(y, x) int32 of the pixel holding each point [..., 2] (x, y in pixels), clipped to the map."""
    x = tf.clip_by_value(tf.cast(tf.floor(points[..., 0]), tf.int32), 0, width - 1)
    y = tf.clip_by_value(tf.cast(tf.floor(points[..., 1]), tf.int32), 0, height - 1)
    return y, x


def batch_index_like(index):
    """The frame number of every element of `index` [N, ...] (for gather_nd without batch_dims: TFLite, ONNX)."""
    rank = len(index.shape)
    return tf.broadcast_to(tf.reshape(tf.range(tf.shape(index)[0]), [-1] + [1] * (rank - 1)), tf.shape(index))


def with_batch(index):
    """index [N, ...] into axis 1 -> gather_nd indices [N, ..., 2] (frame, index)."""
    return tf.stack([batch_index_like(index), index], axis=len(index.shape))  # not -1: tf2onnx needs the axis


def take(values, index):
    """values [N, M, ...] read at index [N, K] per frame -> [N, K, ...]."""
    return tf.gather_nd(values, with_batch(index))


class PerJoint:
    """A table with one entry per joint along axis `axis` (negative) of its stacked form: a Python list of tensors
    (the unrolled graph, where reading or replacing a joint's entry is a list item, not an op) or the stacked tensor
    (inside a `tf.while_loop`, where the joint is a tensor). Steps written against it run in both forms."""

    def __init__(self, entries, axis):
        self.entries, self.axis = entries, axis

    @classmethod
    def unstacked(cls, stacked, axis):
        """The list form of `stacked` (the joint along `axis`, of static size)."""
        return cls(tf.unstack(stacked, stacked.shape[axis], axis=axis), axis)

    @property
    def unrolled(self):
        return isinstance(self.entries, list)

    def __getitem__(self, joint):
        return self.entries[joint] if self.unrolled else tf.gather(self.entries, joint, axis=self.axis)

    def replaced(self, joint, values):
        """The table with `joint`'s entry set to `values`."""
        if self.unrolled:
            return PerJoint([values if j == joint else entry for j, entry in enumerate(self.entries)], self.axis)
        joints = self.entries.shape[self.axis]
        at_joint = tf.reshape(tf.equal(tf.range(joints), joint), [joints] + [1] * (-self.axis - 1))
        return PerJoint(tf.where(at_joint, tf.expand_dims(values, self.axis), self.entries), self.axis)

    def stacked(self, axis=None):
        """The entries as one tensor, the joint along `axis` (default: the table's)."""
        axis = self.axis if axis is None else axis
        if self.unrolled:
            return tf.stack(self.entries, axis=axis)
        if axis == self.axis:
            return self.entries
        order = list(range(len(self.entries.shape)))
        order.insert(axis % len(order), order.pop(self.axis % len(order)))
        return tf.transpose(self.entries, order)

    def from_stacked(self, stacked, axis=None):
        """`stacked` (the joint along `axis`, default the table's) as a table in this table's form."""
        axis = self.axis if axis is None else axis
        if self.unrolled:
            return PerJoint(tf.unstack(stacked, stacked.shape[axis], axis=axis), self.axis)
        return PerJoint(PerJoint(stacked, axis).stacked(self.axis), self.axis)
