"""Labelled image data sets in the IDX format (MNIST, Fashion-MNIST)."""
from stream_cnn.data.idx import LabelledImages, find_dataset, load_dataset, read_idx

__all__ = ["LabelledImages", "find_dataset", "load_dataset", "read_idx"]
