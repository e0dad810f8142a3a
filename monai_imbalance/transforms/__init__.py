"""Transforms: Mask-Aware Cropping, probabilistic cropping, DBCE / uncertainty / U-Net border weight maps, signed
distance maps, connected-component ids (blob loss).

Each transform has an array class and a dictionary class ``...d`` with MONAI's ``D``/``Dict`` aliases.
"""

from __future__ import annotations

from .components import (
    ConnectedComponents,
    ConnectedComponentsD,
    ConnectedComponentsd,
    ConnectedComponentsDict,
    connected_components,
)
from .crop import (
    CROP_CENTER_KEY,
    CROP_CLASS_KEY,
    CROP_KIND_KEY,
    CROP_START_KEY,
    MAC_DEFAULTS,
    PC_DEFAULTS,
    CropSample,
    MaskAwareWindows,
    MaskAwareWindowsD,
    MaskAwareWindowsd,
    MaskAwareWindowsDict,
    ProbabilisticCropCenters,
    ProbabilisticCropCentersD,
    ProbabilisticCropCentersd,
    ProbabilisticCropCentersDict,
    ProbabilisticCropCentres,
    ProbabilisticCropCentresD,
    ProbabilisticCropCentresd,
    ProbabilisticCropCentresDict,
    RandMaskAwareCrop,
    RandMaskAwareCropD,
    RandMaskAwareCropd,
    RandMaskAwareCropDict,
    RandProbabilisticCrop,
    RandProbabilisticCropD,
    RandProbabilisticCropd,
    RandProbabilisticCropDict,
    mac_window_starts,
)
from .utils import window_foreground_counts, window_start_grid
from .weights import (
    BorderWeightMap,
    BorderWeightMapD,
    BorderWeightMapd,
    BorderWeightMapDict,
    DilationWeightMap,
    DilationWeightMapD,
    DilationWeightMapd,
    DilationWeightMapDict,
    SignedDistanceMap,
    SignedDistanceMapD,
    SignedDistanceMapd,
    SignedDistanceMapDict,
    UncertaintyWeightMap,
    UncertaintyWeightMapD,
    UncertaintyWeightMapd,
    UncertaintyWeightMapDict,
    border_weight_map,
    dilation_weight_map,
    signed_distance_map,
    uncertainty_weight_map,
)

# isort: split
# I/O transforms: loaders (io.py) and writers of predictions like their inputs (writers.py)
from .io import (
    ExtractSliceD,
    ExtractSliced,
    ExtractSliceDict,
    LoadArrayD,
    LoadArrayd,
    LoadArrayDict,
    LoadBinaryMaskD,
    LoadBinaryMaskd,
    LoadBinaryMaskDict,
    pil_to_grey,
    read_array,
    split_volume_name,
)
from .post import AsDiscreteKeepNaN, AsDiscreteKeepNaND, AsDiscreteKeepNaNd, AsDiscreteKeepNaNDict
from .writers import (
    SaveLabelVolumeLikeInputD,
    SaveLabelVolumeLikeInputd,
    SaveLabelVolumeLikeInputDict,
    SaveMaskLikeInputD,
    SaveMaskLikeInputd,
    SaveMaskLikeInputDict,
)
