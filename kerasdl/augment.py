"""Data augmentation applied in the tf.data pipeline, on the training split only.

For now one transform, the one the default run needs: random integer **translation** with zero
fill (LeCun et al. 1998 and Simard et al. 2003 on MNIST: small shifts are the cheapest way to
multiply a small digit set). It is label-preserving by construction and fully deterministic for a
given seed: the random shifts come from a seeded ``tf.data.Dataset.random`` stream zipped with the
batches, re-randomised each epoch in a reproducible way, and applied with stateless ops.

``--augment`` takes ``auto`` (translation for image datasets of at least 16x16 pixels, nothing
for tabular or tiny images), ``none``, or ``translate``.
"""

from __future__ import annotations

from kerasdl.errors import KerasdlUsageError, UnknownNameError

AUGMENTATIONS = ("auto", "none", "translate")
MAX_SHIFT_FRACTION = 0.08  # of the image side: 2 pixels on 28x28 MNIST


def resolve(spec: str, input_shape, task: str = "classification") -> list[str]:
    """The list of transforms ``spec`` means for inputs of ``input_shape``."""
    names = [s.strip() for s in str(spec).split(",") if s.strip()]
    for name in names:
        if name not in AUGMENTATIONS:
            raise UnknownNameError("augmentation", name, AUGMENTATIONS)
    is_image = len(input_shape) == 3
    if names in (["auto"], []):
        wanted = is_image and min(input_shape[:2]) >= 16 and task == "classification"
        return ["translate"] if wanted else []
    names = [n for n in names if n not in ("none", "auto")]
    if names and task == "segmentation":
        raise KerasdlUsageError(
            f"augmentation {','.join(names)} would move the images but not their masks; "
            "use --augment none for segmentation"
        )
    if names and not is_image:
        raise KerasdlUsageError(
            f"augmentation {','.join(names)} needs image inputs (height, width, channels). "
            f"Received: input_shape={tuple(input_shape)}"
        )
    return names


def apply(dataset, names: list[str], input_shape, seed: int):
    """Map the transforms over a batched ``(x, y)`` dataset of normalised images."""
    import tensorflow as tf

    if not names:
        return dataset
    height, width = int(input_shape[0]), int(input_shape[1])
    max_dy = max(1, round(MAX_SHIFT_FRACTION * height))
    max_dx = max(1, round(MAX_SHIFT_FRACTION * width))
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    def translate(batch, seed_pair):
        x, y = batch
        stateless_seed = tf.cast(seed_pair % (2**31 - 1), tf.int32)
        n = tf.shape(x)[0]
        dy = tf.random.stateless_uniform([n], stateless_seed, -max_dy, max_dy + 1, dtype=tf.int32)
        dx = tf.random.stateless_uniform([n], stateless_seed + 1, -max_dx, max_dx + 1, dtype=tf.int32)
        padded = tf.pad(x, [[0, 0], [max_dy, max_dy], [max_dx, max_dx], [0, 0]])  # zero fill
        rows = tf.range(height)[None, :] + max_dy - dy[:, None]  # (B, H) source rows
        cols = tf.range(width)[None, :] + max_dx - dx[:, None]  # (B, W) source columns
        x = tf.gather(padded, rows, axis=1, batch_dims=1)  # (B, H, W + 2 max_dx, C)
        x = tf.gather(x, cols, axis=2, batch_dims=1)  # (B, H, W, C)
        return x, y

    return tf.data.Dataset.zip((dataset, seeds)).map(translate, num_parallel_calls=tf.data.AUTOTUNE)
