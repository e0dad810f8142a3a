"""Datasets: label/image readers, synthetic look-alikes, datalist builders for the supported public datasets."""

from __future__ import annotations

# loader transforms for the dataset formats: monai_imbalance.apps.loaders (not imported here: it imports MONAI)
from .acdc import ACDC_LABELS, acdc_items, acdc_sections, acdc_split, download_acdc, prepare_acdc, read_info_cfg
from .checks import DatasetLayoutError
from .clinicdb import clinicdb_items, clinicdb_sections, clinicdb_split, prepare_clinicdb
from .datalist import write_datalist
from .download import DownloadError, Resource, download_resources
from .io import find_label_files, load_label_file
from .isic import download_isic2018, isic2018_items, isic2018_resized_cache, isic2018_split, prepare_isic2018
from .kvasir import (
    PRANET_KVASIR_TEST_IDS,
    download_kvasir,
    kvasir_items,
    kvasir_sections,
    kvasir_split,
    prepare_kvasir,
)
from .lookalike import (
    write_acdc_lookalike,
    write_clinicdb_lookalike,
    write_isic_lookalike,
    write_kvasir_lookalike,
    write_lookalike,
    write_synapse_lookalike,
)
from .registry import (
    DATASETS,
    DatasetOption,
    DatasetSections,
    DatasetSpec,
    get_dataset,
    prepare_dataset,
    register_dataset,
)
from .splits import fixed_split, holdout_split, kfold_partitions, kfold_split, read_id_list
from .synapse import (
    BTCV_TO_SYNAPSE,
    SYNAPSE_CLASSES,
    SYNAPSE_TEST_CASES,
    SYNAPSE_TRAIN_CASES,
    convert_btcv_to_synapse,
    map_btcv_labels,
    prepare_synapse,
    synapse_items,
    synapse_split,
)
from .synthetic import iter_synthetic_dataset, make_synthetic_dataset, make_synthetic_pair, write_synthetic_dataset
