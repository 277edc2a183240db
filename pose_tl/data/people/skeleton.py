"""The 15-joint skeleton of the ITOP dataset (Haque et al., ECCV 2016): joint order, limbs and left/right pairs."""

JOINT_NAMES = (
    "head", "neck", "right_shoulder", "left_shoulder", "right_elbow", "left_elbow", "right_hand", "left_hand",
    "torso", "right_hip", "left_hip", "right_knee", "left_knee", "right_foot", "left_foot",
)
NUM_JOINTS = len(JOINT_NAMES)
JOINT = {name: index for index, name in enumerate(JOINT_NAMES)}

# Bones as (parent, child) joint indices: the skeleton's tree, used for drawing, PAFs and occlusion inference.
LIMBS = tuple((JOINT[a], JOINT[b]) for a, b in (
    ("head", "neck"), ("neck", "right_shoulder"), ("neck", "left_shoulder"),
    ("right_shoulder", "right_elbow"), ("right_elbow", "right_hand"),
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_hand"),
    ("neck", "torso"), ("torso", "right_hip"), ("torso", "left_hip"),
    ("right_hip", "right_knee"), ("right_knee", "right_foot"),
    ("left_hip", "left_knee"), ("left_knee", "left_foot"),
))

# Extra part affinity fields beyond the tree, as OpenPose's redundant connections: a person whose neck or torso
# is outside the frame (cut by its top edge) or hidden still joins into one skeleton across the shoulders and hips.
EXTRA_PAF_LIMBS = tuple((JOINT[a], JOINT[b]) for a, b in (
    ("right_shoulder", "left_shoulder"), ("right_hip", "left_hip"),
    ("right_shoulder", "right_hip"), ("left_shoulder", "left_hip"),
))
# The limbs the pose head predicts a field for: the tree first (grouping assembles people along it), then the extras.
PAF_LIMBS = LIMBS + EXTRA_PAF_LIMBS

# For each joint, the joint it becomes under a horizontal flip (left <-> right).
FLIP_INDEX = tuple(JOINT[n.replace("right_", "LEFT_").replace("left_", "right_").replace("LEFT_", "left_")]
                   for n in JOINT_NAMES)

# Visibility codes, as COCO: 0 = not in the frame, 1 = in the frame but occluded, 2 = visible.
OUT_OF_FRAME, OCCLUDED, VISIBLE = 0, 1, 2

POSE_CLASSES = ("standing", "t_pose", "arms_up", "sitting", "crouching", "pointing", "waving", "walking")
