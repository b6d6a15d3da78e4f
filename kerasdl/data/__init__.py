"""kerasdl's data layer: datasets as batched, normalised ``tf.data`` pipelines plus metadata.

Names resolve to our offline tfds builders (``mnist5k``, ``digits``, ``iris``, ``wine``,
``breast_cancer``, ``diabetes``, ``xor``, ``spirals``, ``moons``, ``circles``, the GAN toys
``coinflip`` and ``ring8``, and the segmentation set ``shapes``), any tfds
catalog name (``cifar10``; ``tfds:NAME`` forces the catalog), an image folder, a ``.npz`` or a
``.csv``. Importing :mod:`kerasdl.data.builders` registers the offline builders with tfds, so
``tfds.builder("kerasdl_mnist5k")`` works too. Importing this package itself imports neither
TensorFlow nor tfds: the names below load their module on first use (the config layer imports
:mod:`kerasdl.data.augment` and :mod:`kerasdl.data.info` for their vocabularies).

    >>> from kerasdl.data import load_dataset
    >>> train, info = load_dataset("mnist5k", "train", batch_size=128)
    >>> info.input_shape, info.num_classes
    ((28, 28, 1), 10)
"""

_EXPORTS = {
    "OFFLINE_DATASETS": "builders", "list_datasets": "builders",
    "read_inputs": "files",
    "DatasetInfo": "info", "normalize": "info",
    "dataset_info": "loading", "default_data_dir": "loading", "load_arrays": "loading", "load_dataset": "loading",
    "load_splits": "subset",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kerasdl.data' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"kerasdl.data.{module}"), name)
