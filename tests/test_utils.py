from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_imbalance.utils import ensure_int_sequence, to_numpy, validate_label


@pytest.mark.parametrize(
    "label", [np.array([[0, 1], [2, 1]]), torch.tensor([[0, 1], [2, 1]]), MetaTensor(torch.tensor([[0, 1], [2, 1]]))]
)
def test_validate_label_accepts_numpy_torch_metatensor(label):
    out = validate_label(label, num_classes=3)
    assert out.dtype == np.uint8  # an int64 label whose values fit a byte comes back as uint8
    np.testing.assert_array_equal(out, [[0, 1], [2, 1]])


def test_validate_label_casts_whole_floats_and_bools_to_the_smallest_unsigned_dtype():
    out = validate_label(np.array([0.0, 2.0], dtype=np.float32))
    assert out.dtype == np.uint8 and out.tolist() == [0, 2]
    wide = validate_label(np.array([[0.0, 300.0], [7.0, 1.0]]))
    assert wide.dtype == np.uint16 and wide.tolist() == [[0, 300], [7, 1]]
    fortran = validate_label(np.asfortranarray(np.arange(12.0).reshape(3, 4)))
    assert fortran.dtype == np.uint8 and fortran.tolist() == np.arange(12).reshape(3, 4).tolist()
    assert validate_label(np.arange(8.0)[::2]).tolist() == [0, 2, 4, 6]  # strided
    bools = validate_label(np.array([True, False]))
    assert bools.dtype == np.uint8 and bools.tolist() == [1, 0]
    label = np.array([[0, 3]], dtype=np.uint8)
    assert validate_label(label) is label  # no copy
    wide_int = np.array([[0, 3000]], dtype=np.int16)
    assert validate_label(wide_int) is wide_int  # values beyond a byte: the integer label as it is


LABEL_DTYPES = [np.float32, np.float64, np.int64, np.int32, np.int16, np.uint16, np.uint8, bool]


def _label_as(values, dtype, kind, layout):
    arr = values.astype(dtype)
    if layout == "F":
        arr = np.asfortranarray(arr)
    elif layout == "strided":
        arr = np.repeat(arr, 2, axis=-1)[..., ::2]
    if kind == "torch":
        return torch.from_numpy(np.ascontiguousarray(arr)) if layout == "F" else torch.from_numpy(arr)
    if kind == "meta":
        return MetaTensor(torch.from_numpy(np.ascontiguousarray(arr)))
    return arr


@pytest.mark.parametrize("dtype", LABEL_DTYPES)
@pytest.mark.parametrize("kind", ["numpy", "torch", "meta"])
@pytest.mark.parametrize("layout", ["C", "F", "strided"])
@pytest.mark.parametrize("shape", [(37, 23), (1, 19, 17, 11), (300, 301)])
def test_validate_label_any_dtype_gives_the_same_uint8_values(dtype, kind, layout, shape):
    rng = np.random.default_rng(sum(shape))
    values = rng.integers(0, 2 if dtype is bool else 9, size=shape)
    out = validate_label(_label_as(values, dtype, kind, layout), num_classes=9)
    assert out.dtype == np.uint8 and out.shape == shape
    np.testing.assert_array_equal(out, values)


BAD_VALUES = [(0.5, "non-integer"), (np.nan, "NaN or infinite"), (-np.inf, "NaN or infinite"), (-1, "negative"),
              (256, "has value 256 but num_classes=9"), (1e30, "too large")]


def _representable(dtype, value):
    if not np.issubdtype(dtype, np.integer):
        return True
    return float(value).is_integer() and abs(value) <= np.iinfo(dtype).max


@pytest.mark.parametrize(
    "dtype, bad, match",
    [(d, b, m) for d in (np.float32, np.float64, np.int64, np.int16) for b, m in BAD_VALUES if _representable(d, b)],
)
@pytest.mark.parametrize("size", [1000, 1 << 20])  # one block, many blocks
def test_validate_label_finds_one_bad_value_anywhere(dtype, bad, match, size):
    rng = np.random.default_rng(size)
    label = rng.integers(0, 9, size=size).astype(dtype)
    for position in (0, int(rng.integers(1, size - 1)), size - 1):  # first block, anywhere, last block
        broken = label.copy()
        broken[position] = bad
        with pytest.raises(ValueError, match=match):
            validate_label(broken, num_classes=9)


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_validate_label_makes_no_wide_copy_of_a_float32_or_int64_label(dtype):
    label = np.zeros((1, 128, 128, 64), dtype=dtype)  # 4 or 8 MiB
    label[0, 20:90, 30:100, 5:50] = 2
    tracemalloc.start()
    try:
        out = validate_label(label, num_classes=3)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.dtype == np.uint8 and int(out.max()) == 2 and int(out.sum()) == 2 * 70 * 70 * 45
    # the uint8 result (1 byte per voxel) and chunk-sized temporaries; an int64 copy would be 8 bytes per voxel
    assert peak < 1.25 * label.size + (1 << 20), peak


def test_validate_label_non_integer_values_after_a_chunk():
    label = np.zeros(1 << 20, dtype=np.float32)
    label[-1] = 0.5  # only in the last comparison chunk
    with pytest.raises(ValueError, match=r"non-integer values \(e.g. \[0.5\]\)"):
        validate_label(label)
    with pytest.raises(ValueError, match=r"non-integer values \(e.g. \[-0.25\]\)"):
        validate_label(np.array([0.0, -0.25]))  # the non-integer value is named before the negative one


@pytest.mark.parametrize(
    "label, num_classes, match",
    [
        (np.array([0.0, 0.5]), None, "non-integer values"),
        (np.array([0.0, np.nan]), None, "NaN or infinite"),
        (np.array([0.0, np.inf]), None, "NaN or infinite"),
        (np.array([-1.0, 0.0]), None, "negative values"),
        (np.array([0, -1]), None, "negative values"),
        (np.array([0, 3]), 3, "has value 3 but num_classes=3"),
        (np.array([0, 255], dtype=np.uint8), 2, "threshold=127"),
        (np.array(["a"]), None, "must be numeric"),
        (np.zeros((0, 3)), None, "is empty"),
    ],
)
def test_validate_label_errors_name_the_problem(label, num_classes, match):
    with pytest.raises(ValueError, match=match):
        validate_label(label, num_classes=num_classes, source="case_7.png")
    with pytest.raises(ValueError, match="case_7.png"):
        validate_label(label, num_classes=num_classes, source="case_7.png")


def test_ensure_int_sequence():
    assert ensure_int_sequence(4, 3, "roi_size") == (4, 4, 4)
    assert ensure_int_sequence((2, 5), 2, "roi_size") == (2, 5)
    assert ensure_int_sequence(np.array([3, 1]), 2, "stride") == (3, 1)
    assert ensure_int_sequence(0, 2, "offset", minimum=0) == (0, 0)
    with pytest.raises(ValueError, match="roi_size must be an int or 3 values"):
        ensure_int_sequence((2, 5), 3, "roi_size")
    with pytest.raises(ValueError, match="stride must be >= 1"):
        ensure_int_sequence(0, 2, "stride")


def test_to_numpy_detaches_tensors_and_keeps_the_layout():
    t = torch.ones(2, requires_grad=True)
    assert to_numpy(t * 2).tolist() == [2.0, 2.0]
    meta = MetaTensor(torch.arange(6).reshape(2, 3))
    assert to_numpy(meta).tolist() == [[0, 1, 2], [3, 4, 5]]
    fortran = np.asfortranarray(np.arange(6).reshape(2, 3))
    assert to_numpy(fortran) is fortran  # no contiguous copy (what monai.utils.convert_to_numpy would make)


def test_ensure_int_sequence_reads_whole_floats_and_rejects_fractions():
    from monai_imbalance.utils import ensure_int_sequence

    assert ensure_int_sequence(32.0, 2, "roi_size") == (32, 32)
    assert ensure_int_sequence((16, 8.0, 4), 3, "roi_size") == (16, 8, 4)
    with pytest.raises(ValueError, match="roi_size must be a whole number of pixels on every axis, got 32.5"):
        ensure_int_sequence(32.5, 2, "roi_size")  # int() used to truncate it to 32 silently
    with pytest.raises(ValueError, match=r"roi_size must be an int or 2 values \(one per spatial axis\)"):
        ensure_int_sequence((1, 2, 3), 2, "roi_size")
    with pytest.raises(ValueError, match="stride must be >= 1"):
        ensure_int_sequence(0, 2, "stride")


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_validate_label_background_blocks_still_see_tiny_and_negative_zero_values(dtype):
    # all-zero blocks skip the comparison; a block whose only non-zero bits are a -0.0 (a valid 0) or the smallest
    # positive float (not a class index) must not be skipped silently
    label = np.zeros((40, 300, 20), dtype=dtype)
    label[17, 3, 4] = -0.0
    out = validate_label(label)
    assert out.dtype == np.uint8 and not out.any()
    label[33, 100, 7] = np.finfo(dtype).smallest_subnormal
    with pytest.raises(ValueError, match="non-integer values"):
        validate_label(label)
    label[33, 100, 7] = 2
    assert int(validate_label(label).max()) == 2


def _plain_label_check(values):
    """The definition of a valid label, element by element in float64: the class indices, or None."""
    as_float = values.astype(np.float64)
    if not (np.isfinite(as_float).all() and (as_float == np.round(as_float)).all() and (as_float >= 0).all()):
        return None
    return as_float.astype(np.int64)


SPARSE_DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int16, np.int64, np.uint16, np.uint32,
                 ">i2", ">f4", ">f8", ">u4"]  # big-endian: NIfTI files written on such machines load that way


@pytest.mark.parametrize("dtype", SPARSE_DTYPES)
@pytest.mark.parametrize("layout", ["C", "F", "strided"])
@pytest.mark.parametrize("ndim", [2, 3])
def test_validate_label_sparse_labels_with_one_odd_value_match_the_plain_definition(dtype, layout, ndim):
    # mostly-background labels (the all-zero blocks the fused check skips) with a few objects and one odd value in a
    # block that is otherwise background: the result (or the error) must be the plain definition's
    dtype = np.dtype(dtype)
    rng = np.random.default_rng([ndim, len(layout), dtype.itemsize, dtype.kind.encode()[0]])
    shape = (700, 300) if ndim == 2 else (60, 50, 70)
    odd_values = [0.0, 1.0, 7.0, 255.0, 256.0, -1.0, -0.0, 0.5, 254.5, np.nan, np.inf, -np.inf, 1e-30, 3e4]
    for odd in odd_values:
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            if not (np.isfinite(odd) and float(odd).is_integer() and info.min <= odd <= info.max):
                continue
        elif not np.isfinite(np.array(odd, dtype=dtype)) and np.isfinite(odd):
            continue  # a value the float dtype cannot hold (it would overflow to inf)
        values = np.zeros(shape)
        for _ in range(3):  # a few small objects
            corner = [int(rng.integers(0, n - 5)) for n in shape]
            values[tuple(slice(c, c + 4) for c in corner)] = int(rng.integers(1, 9))
        position = tuple(int(rng.integers(0, n)) for n in shape)
        values[position] = odd
        label = values.astype(dtype)
        if layout == "F":
            label = np.asfortranarray(label)
        elif layout == "strided":
            label = np.repeat(label, 2, axis=0)[::2]
        expected = _plain_label_check(label)
        if expected is None:
            with pytest.raises(ValueError, match="non-integer|NaN or infinite|negative"):
                validate_label(label)
            continue
        out = validate_label(label)
        np.testing.assert_array_equal(out.astype(np.int64), expected, err_msg=f"odd value {odd}")
        if expected.max() <= 255:
            assert out.dtype == np.uint8, (odd, out.dtype)
