"""radiomx.features.peak: IBSI 1 local intensity peak (VJGA) and global intensity peak (0F91).

(a) the IBSI 1 digital phantom against the consensus reference values (comparison rule of the IBSI compliance
    sheet, ../shared/data/ibsi/README.md);
(b) an independent brute-force computation on hypothesis-drawn images, spacings and masks;
(c) sphere voxel counts (N_s) on common grids.
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from radiomx.features.peak import IBSI_PEAK_RADIUS_MM, intensity_peaks, sphere_offsets

from .conftest import shared_data

PHANTOM_IMG = ("ibsi", "ibsi_1_digital_phantom", "nifti", "image", "phantom.nii.gz")
PHANTOM_MASK = ("ibsi", "ibsi_1_digital_phantom", "nifti", "mask", "mask.nii.gz")
PHANTOM_REF = ("ibsi", "reference_values", "ibsi_1_mirp", "ibsi_1_dig_phantom.csv")


# ----------------------------------------------------------------------------------------------
# (a) IBSI 1 digital phantom
# ----------------------------------------------------------------------------------------------

def _rounddown(x: float, digits: int) -> float:
    """Excel ROUNDDOWN: truncate toward zero at `digits` decimals (digits may be negative)."""
    f = 10.0 ** digits
    return math.trunc(round(x * f, 9)) / f


def ibsi_match(ref: float, value: float, tol: float) -> tuple[bool, float]:
    """IBSI compliance-sheet rule: diff = |ROUNDDOWN(ref - value, 3 - (1 + INT(LOG10(|ref|))))|."""
    digits = 3 - (1 + math.floor(math.log10(abs(ref)))) if ref != 0 else 3
    diff = abs(_rounddown(ref - value, digits))
    return diff <= tol, diff


def _reference(tag: str) -> tuple[float, float]:
    with open(shared_data(*PHANTOM_REF), newline="") as fh:
        for row in csv.DictReader(fh, delimiter=";"):
            if row["tag"] == tag:
                return float(row["reference value"]), float(row["tolerance"])
    raise KeyError(tag)


@pytest.fixture(scope="module")
def phantom():
    import SimpleITK as sitk

    img = sitk.ReadImage(str(shared_data(*PHANTOM_IMG)))
    msk = sitk.ReadImage(str(shared_data(*PHANTOM_MASK)))
    a = sitk.GetArrayFromImage(img).astype(np.float64)  # (z, y, x)
    m = sitk.GetArrayFromImage(msk) > 0
    spacing_zyx = tuple(reversed(img.GetSpacing()))
    assert spacing_zyx == (2.0, 2.0, 2.0)
    return a, m, spacing_zyx


def test_ibsi_match_rule():
    assert ibsi_match(3.1, 3.1034, 0) == (True, 0.0)
    assert not ibsi_match(3.1, 3.11, 0)[0]
    assert ibsi_match(-277, -280, 10)[0]
    assert not ibsi_match(189, 195, 5)[0]


@pytest.mark.parametrize("tag,attr", [("loc_peak_loc", "local_peak"), ("loc_peak_glob", "global_peak")])
def test_phantom_reference(phantom, tag, attr):
    a, m, sp = phantom
    res = intensity_peaks(a, m, sp)
    ref, tol = _reference(tag)
    ok, diff = ibsi_match(ref, getattr(res, attr), tol)
    assert ok, f"{tag}: ours {getattr(res, attr)!r}, ref {ref} tol {tol}, truncated diff {diff}"


def test_phantom_details(phantom):
    a, m, sp = phantom
    res = intensity_peaks(a, m, sp)
    assert res.sphere_voxels == 123
    # the image maximum (9) lies outside the ROI; the ROI maximum is 6, shared by 7 voxels
    assert a.max() == 9 and res.max_intensity == 6 and res.n_max_voxels == 7
    assert res.local_peak == pytest.approx(2.6, abs=1e-12)
    assert res.global_peak == pytest.approx(90 / 29, abs=1e-12)
    # the phantom is tiny: every sphere is clipped by the image border
    assert res.local_sphere_voxels_in_image < 123


# ----------------------------------------------------------------------------------------------
# (b) independent brute force
# ----------------------------------------------------------------------------------------------

def brute_force(image: np.ndarray, mask: np.ndarray, spacing_zyx, radius=IBSI_PEAK_RADIUS_MM):
    """Per-voxel loop; distances from physical centre coordinates; in-image voxels only."""
    sp = np.asarray(spacing_zyx, dtype=float)
    coords = np.stack(np.meshgrid(*[np.arange(n) for n in image.shape], indexing="ij"), -1).reshape(-1, 3)
    phys = coords * sp                     # physical centre position of every voxel
    vals = image.reshape(-1).astype(float)
    roi = np.flatnonzero(mask.reshape(-1))
    means = {}
    for i in roi:
        total, n = 0.0, 0
        for j in range(len(vals)):
            d = math.sqrt(float(np.sum((phys[j] - phys[i]) ** 2)))
            if d <= radius:
                total += vals[j]
                n += 1
        means[int(i)] = total / n
    roi_max = vals[roi].max()
    local = max(means[i] for i in roi if vals[i] == roi_max)
    glob = max(means.values())
    return local, glob, means


def _min_boundary_gap(shape, spacing, radius=IBSI_PEAK_RADIUS_MM) -> float:
    """Smallest |distance - r| over all voxel-pair offsets that fit in the image."""
    axes = [np.arange(-(n - 1), n) for n in shape]
    g = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    d = np.sqrt(np.sum((g * np.asarray(spacing)) ** 2, axis=1))
    return float(np.min(np.abs(d - radius)))


spacings = st.tuples(*[st.floats(0.5, 6.0, allow_nan=False, allow_infinity=False)] * 3)
shapes = st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 7))


@st.composite
def cases(draw):
    shape = draw(shapes)
    sp = draw(spacings)
    n = int(np.prod(shape))
    if draw(st.booleans()):   # small integer grey levels -> many ties for the local-peak rule
        vals = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    else:
        vals = draw(st.lists(st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=32),
                             min_size=n, max_size=n))
    image = np.asarray(vals, dtype=np.float64).reshape(shape)
    kind = draw(st.sampled_from(["random", "border", "single", "full"]))
    if kind == "full":
        mask = np.ones(shape, bool)
    elif kind == "single":
        mask = np.zeros(shape, bool)
        mask[tuple(draw(st.integers(0, s - 1)) for s in shape)] = True
    else:
        bits = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        mask = np.asarray(bits, bool).reshape(shape)
        if kind == "border":  # force a voxel on the image border (a corner)
            mask[tuple(draw(st.sampled_from([0, s - 1])) for s in shape)] = True
        if not mask.any():
            mask.reshape(-1)[draw(st.integers(0, n - 1))] = True
    return image, mask, sp


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_against_brute_force(case):
    image, mask, sp = case
    # avoid pathological spacings where a pair distance equals r up to rounding (< vs <= ambiguity
    # and last-ulp differences between the two distance computations)
    assume(_min_boundary_gap(image.shape, sp) > 1e-9)
    res = intensity_peaks(image, mask, sp)
    local, glob, means = brute_force(image, mask, sp)
    scale = max(1.0, float(np.abs(image).max()))
    assert res.local_peak == pytest.approx(local, rel=1e-9, abs=1e-9 * scale)
    assert res.global_peak == pytest.approx(glob, rel=1e-9, abs=1e-9 * scale)
    # reported centres are consistent
    lc = np.ravel_multi_index(res.local_centre, image.shape)
    gc = np.ravel_multi_index(res.global_centre, image.shape)
    assert mask[res.local_centre] and mask[res.global_centre]
    assert image[res.local_centre] == image[mask].max()
    assert means[int(lc)] == pytest.approx(res.local_peak, rel=1e-9, abs=1e-9 * scale)
    assert means[int(gc)] == pytest.approx(res.global_peak, rel=1e-9, abs=1e-9 * scale)
    assert res.sphere_voxels == len(sphere_offsets(sp))


@settings(max_examples=200, deadline=None)
@given(spacings)
def test_sphere_offsets_brute_force(sp):
    offs = sphere_offsets(sp)
    # enumerate a generous cube independently and count by physical distance
    e = [int(math.ceil(IBSI_PEAK_RADIUS_MM / s)) + 1 for s in sp]
    expected = set()
    for i in range(-e[0], e[0] + 1):
        for j in range(-e[1], e[1] + 1):
            for k in range(-e[2], e[2] + 1):
                if math.sqrt((i * sp[0]) ** 2 + (j * sp[1]) ** 2 + (k * sp[2]) ** 2) <= IBSI_PEAK_RADIUS_MM:
                    expected.add((i, j, k))
    assert set(map(tuple, offs.tolist())) == expected
    assert len(offs) == len(expected)
    assert (0, 0, 0) in expected
    # symmetric under o -> -o
    assert set(map(tuple, (-offs).tolist())) == expected


def test_outside_roi_voxels_are_used():
    img = np.zeros((5, 5, 5))
    img[2, 2, 3] = 100.0                      # hot voxel just outside the ROI
    mask = np.zeros_like(img, bool)
    mask[2, 2, 2] = True
    res = intensity_peaks(img, mask, (4.0, 4.0, 4.0))
    assert res.sphere_voxels == 19
    assert res.local_peak == pytest.approx(100.0 / 19)


def test_outside_image_voxels_left_out():
    img = np.full((3, 3, 3), 7.0)
    mask = np.zeros_like(img, bool)
    mask[0, 0, 0] = True                      # corner: sphere clipped by the image
    res = intensity_peaks(img, mask, (4.0, 4.0, 4.0))
    assert res.local_peak == 7.0              # zero padding would give 7 * 7 / 19
    assert res.local_sphere_voxels_in_image == 1 + 3 + 3  # centre, 3 faces, 3 in-image edges
    single = intensity_peaks(np.array([[[3.5]]]), np.ones((1, 1, 1), bool), (2.0, 2.0, 2.0))
    assert single.local_peak == single.global_peak == 3.5


def test_tie_rule_takes_highest_local_peak():
    img = np.zeros((3, 3, 9))
    mask = np.zeros_like(img, bool)
    mask[1, 1, 1] = mask[1, 1, 7] = True
    img[1, 1, 1] = img[1, 1, 7] = 10.0        # two max voxels
    img[1, 1, 8] = 5.0                         # neighbour of the second only
    res = intensity_peaks(img, mask, (4.0, 4.0, 4.0))
    assert res.n_max_voxels == 2
    assert res.local_centre == (1, 1, 7)
    n7 = res.local_sphere_voxels_in_image
    assert res.local_peak == pytest.approx(15.0 / n7)


def test_local_peak_is_not_global_peak_when_max_is_isolated():
    img = np.zeros((5, 5, 12))
    mask = np.ones_like(img, bool)
    img[2, 2, 2] = 10.0                        # isolated maximum
    img[2, 2, 8] = 9.0                         # slightly lower, but hot neighbourhood
    img[2, 2, 7] = img[2, 2, 9] = img[2, 1, 8] = 8.0
    res = intensity_peaks(img, mask, (4.0, 4.0, 4.0))
    assert res.local_centre == (2, 2, 2)
    # (2,2,8) and (1,2,8) both see 9+8+8+8 (all sphere voxels in-image): tie -> first in C order
    assert res.global_peak == pytest.approx(33.0 / 19)
    assert res.global_centre == (1, 2, 8)
    assert res.local_peak == pytest.approx(10.0 / 19)


def test_crop_equals_full_volume_shift_add():
    """The bounding-box crop must not change results (compare with a no-crop computation)."""
    rng = np.random.default_rng(0)
    img = rng.normal(size=(20, 24, 22))
    mask = np.zeros_like(img, bool)
    mask[8:12, 3:9, 10:14] = rng.random((4, 6, 4)) > 0.3
    mask[8, 3, 10] = True
    sp = (3.27, 4.0, 4.0)
    offs = sphere_offsets(sp)
    ext = np.floor(IBSI_PEAK_RADIUS_MM / np.array(sp)).astype(int)
    P = np.pad(img, [(e, e) for e in ext])
    V = np.pad(np.ones_like(img), [(e, e) for e in ext])
    S = np.zeros_like(img)
    N = np.zeros_like(img)
    for dz, dy, dx in offs:
        sl = tuple(slice(e + d, e + d + n) for e, d, n in zip(ext, (dz, dy, dx), img.shape, strict=True))
        S += P[sl]
        N += V[sl]
    M = S / N
    res = intensity_peaks(img, mask, sp)
    assert res.global_peak == pytest.approx(M[mask].max(), rel=1e-12)
    mx = img[mask].max()
    assert res.local_peak == pytest.approx(M[mask & (img == mx)].max(), rel=1e-12)


def test_errors():
    with pytest.raises(ValueError):
        intensity_peaks(np.zeros((2, 2, 2)), np.zeros((2, 2, 2), bool), (1, 1, 1))
    with pytest.raises(ValueError):
        intensity_peaks(np.zeros((2, 2, 2)), np.ones((2, 2, 3), bool), (1, 1, 1))
    with pytest.raises(ValueError):
        intensity_peaks(np.zeros((2, 2, 2)), np.ones((2, 2, 2), bool), (1, 0, 1))
    img = np.zeros((2, 2, 2))
    img[0, 0, 0] = np.nan
    with pytest.raises(ValueError):
        intensity_peaks(img, np.ones((2, 2, 2), bool), (1, 1, 1))


# ----------------------------------------------------------------------------------------------
# (c) sphere voxel counts
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("spacing,count", [
    ((4.0, 4.0, 4.0), 19),      # 1 + 6 face + 12 edge neighbours; corners at 6.93 mm > 6.2035 mm
    ((2.0, 2.0, 2.0), 123),     # |o|^2 <= 9 (9.62 -> 9) lattice points
    ((3.27, 4.0, 4.0), 19),     # 4 x 4 mm in-plane, 3.27 mm slices (z first)
    ((4.0, 4.0, 3.27), 19),     # count is invariant to axis order
    ((1.0, 1.0, 1.0), 1021),
])
def test_sphere_counts(spacing, count):
    assert len(sphere_offsets(spacing)) == count


def test_radius_value():
    assert IBSI_PEAK_RADIUS_MM == pytest.approx(6.2035049, abs=1e-6)
    assert 4.0 / 3.0 * math.pi * IBSI_PEAK_RADIUS_MM ** 3 == pytest.approx(1000.0)
