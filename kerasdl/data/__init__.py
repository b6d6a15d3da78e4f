"""kerasdl's data layer: datasets as batched, normalised ``tf.data`` pipelines plus metadata.

Names resolve to our offline tfds builders (``mnist5k``, ``digits``, ``iris``, ``wine``,
``breast_cancer``, ``diabetes``, ``xor``, ``spirals``, ``moons``, ``circles``, and the
segmentation set ``shapes``), any tfds
catalog name (``cifar10``; ``tfds:NAME`` forces the catalog), an image folder, a ``.npz`` or a
``.csv``. Importing this package registers the offline builders with tfds, so
``tfds.builder("kerasdl_mnist5k")`` works too.

    >>> from kerasdl.data import load_dataset
    >>> train, info = load_dataset("mnist5k", "train", batch_size=128)
    >>> info.input_shape, info.num_classes
    ((28, 28, 1), 10)
"""

from kerasdl.data.builders import OFFLINE_DATASETS, list_datasets
from kerasdl.data.files import read_inputs
from kerasdl.data.info import DatasetInfo, normalize
from kerasdl.data.loading import dataset_info, default_data_dir, load_arrays, load_dataset

__all__ = [
    "DatasetInfo",
    "OFFLINE_DATASETS",
    "dataset_info",
    "default_data_dir",
    "list_datasets",
    "load_arrays",
    "load_dataset",
    "normalize",
    "read_inputs",
]
