"""Datasets: label/image readers, synthetic look-alikes, datalist builders for the supported public datasets."""

from __future__ import annotations

from .io import find_label_files, load_label_file
from .synthetic import iter_synthetic_dataset, make_synthetic_dataset, make_synthetic_pair, write_synthetic_dataset
