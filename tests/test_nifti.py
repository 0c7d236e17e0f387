"""radiomx reads each NIfTI once and builds the image from the checked bytes (``radiomx.inputs.nifti``); that image must
equal ``sitk.ReadImage`` of the same file: same pixel type, same voxels, same origin, spacing and direction.

The headers are written by hand (both byte orders, qform/sform codes, flipped and oblique quaternions, scaled
data), so the cases go beyond what SimpleITK itself writes; hypothesis draws them.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from radiomx.errors import ScanError
from radiomx.inputs import nifti
from radiomx.inputs.imaging import read_volume

from .conftest import shared_data, write_volume

DTYPES = {"u1": 2, "i2": 4, "i4": 8, "f4": 16, "f8": 64, "i1": 256, "u2": 512, "u4": 768, "i8": 1024, "u8": 1280}


def nifti1_bytes(values: np.ndarray, endian: str, *, pixdim=(1.0, 1.0, 1.0), qfac=1.0, quatern=(0.0, 0.0, 0.0),
                 qoffset=(0.0, 0.0, 0.0), srow=None, qform_code=1, sform_code=0, slope=0.0, inter=0.0,
                 vox_offset=352.0) -> bytes:
    """A single-file NIfTI-1 (``n+1``) of a (z, y, x) array, every header field set explicitly."""
    nz, ny, nx = values.shape
    code = DTYPES[values.dtype.str[1:]]
    srow = srow if srow is not None else np.zeros((3, 4))
    header = bytearray(352)

    def put(offset: int, fmt: str, *items) -> None:
        struct.pack_into(endian + fmt, header, offset, *items)

    put(0, "i", 348)
    put(40, "8h", 3, nx, ny, nz, 1, 1, 1, 1)
    put(70, "2h", code, values.dtype.itemsize * 8)
    put(76, "8f", qfac, *pixdim, 0.0, 0.0, 0.0, 0.0)
    put(108, "3f", vox_offset, slope, inter)
    put(123, "b", 2)  # xyzt_units: mm
    put(252, "2h", qform_code, sform_code)
    put(256, "6f", *quatern, *qoffset)
    put(280, "12f", *np.asarray(srow, dtype=float).ravel())
    header[344:348] = b"n+1\0"
    return bytes(header) + values.astype(values.dtype.newbyteorder(endian)).tobytes()


def assert_same_image(ours: sitk.Image, itk: sitk.Image) -> None:
    assert ours.GetPixelID() == itk.GetPixelID()
    assert ours.GetSize() == itk.GetSize()
    assert ours.GetOrigin() == itk.GetOrigin()
    assert ours.GetSpacing() == itk.GetSpacing()
    assert ours.GetDirection() == itk.GetDirection()
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(ours), sitk.GetArrayViewFromImage(itk))


def read_both(path: Path) -> tuple[sitk.Image | Exception, sitk.Image | Exception]:
    try:
        ours = read_volume(path, "image")
    except ScanError as exc:
        ours = exc
    try:
        itk = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        itk = exc
    return ours, itk


unit_quaternions = st.tuples(*[st.floats(-1, 1) for _ in range(4)]).filter(
    lambda q: 0.1 < sum(v * v for v in q)).map(lambda q: np.array(q) / np.sqrt(sum(v * v for v in q)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    shape=st.tuples(*[st.integers(1, 5) for _ in range(3)]),
    dtype=st.sampled_from(sorted(DTYPES)),
    endian=st.sampled_from("<>"),
    gz=st.booleans(),
    quaternion=unit_quaternions,
    qfac=st.sampled_from([1.0, -1.0]),
    pixdim=st.tuples(*[st.floats(0.3, 5.0) for _ in range(3)]),
    codes=st.sampled_from([(1, 0), (0, 1), (1, 1), (2, 2), (0, 0), (1, 2)]),
    scaled=st.sampled_from([(0.0, 0.0), (1.0, 0.0), (2.0, 0.0), (1.0, 5.0)]),
    seed=st.integers(0, 2**16),
)
def test_single_read_equals_sitk_read_image(tmp_path_factory, shape, dtype, endian, gz, quaternion, qfac, pixdim,
                                             codes, scaled, seed):
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype) if dtype[0] in "iu" else None
    values = (rng.integers(max(info.min, -1000), min(info.max, 1000), size=shape[::-1]) if info else
              rng.normal(0, 100, size=shape[::-1])).astype(dtype)
    a, b, c, d = quaternion
    if a < 0:
        a, b, c, d = -a, -b, -c, -d
    rotation = sitk.VersorTransform((b, c, d, a)).GetMatrix()
    srow = np.c_[np.array(rotation).reshape(3, 3) * np.array(pixdim), rng.normal(0, 50, 3)]
    raw = nifti1_bytes(values, endian, pixdim=pixdim, qfac=qfac, quatern=(b, c, d), qoffset=tuple(rng.normal(0, 50, 3)),
                       srow=srow, qform_code=codes[0], sform_code=codes[1], slope=scaled[0], inter=scaled[1])
    path = tmp_path_factory.mktemp("nifti") / ("x.nii.gz" if gz else "x.nii")
    path.write_bytes(gzip.compress(raw, compresslevel=1) if gz else raw)

    ours, itk = read_both(path)
    if isinstance(itk, Exception):
        assert isinstance(ours, ScanError)  # ITK's refusal, reported by name
        return
    assert not isinstance(ours, Exception), ours
    assert_same_image(ours, itk)
    stream = nifti.slice_stream(path, "image")  # organ label maps are read this way, one z slice at a time
    if stream is not None:
        assert stream.size == itk.GetSize() and stream.reader.GetOrigin() == itk.GetOrigin()
        assert stream.reader.GetSpacing() == itk.GetSpacing() and stream.reader.GetDirection() == itk.GetDirection()
        np.testing.assert_array_equal(np.stack(list(stream.slices())), sitk.GetArrayViewFromImage(itk))


def test_fast_path_is_taken_for_plain_volumes_and_not_for_scaled_ones(tmp_path):
    values = np.arange(60, dtype="i2").reshape(3, 4, 5)
    plain = tmp_path / "plain.nii.gz"
    plain.write_bytes(gzip.compress(nifti1_bytes(values, "<")))
    scaled = tmp_path / "scaled.nii.gz"
    scaled.write_bytes(gzip.compress(nifti1_bytes(values, "<", slope=0.5, inter=1.0)))

    def fast(path: Path) -> sitk.Image | None:
        raw = nifti.inflate(path, path.read_bytes(), "image")
        return nifti.image_from_raw(path, raw, nifti.parse_header(path, raw, "image"))

    assert fast(plain) is not None
    assert fast(scaled) is None  # ITK rescales to float: read by ITK itself
    assert_same_image(read_volume(scaled, "image"), sitk.ReadImage(str(scaled)))
    np.testing.assert_allclose(sitk.GetArrayFromImage(read_volume(scaled, "image")), values * 0.5 + 1.0)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
@pytest.mark.parametrize("dtype", ["float32", "uint8", "int16", "uint32"])
def test_files_written_by_simpleitk_read_identically(tmp_path, suffix, dtype):
    values = (np.random.default_rng(1).random((7, 9, 11)) * 200).astype(dtype)
    path = write_volume(values, tmp_path / f"img{suffix}", spacing=(0.7, 1.3, 2.9), origin=(-10.5, 3.25, 99.0))
    image = sitk.ReadImage(str(path))
    image.SetDirection((0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    sitk.WriteImage(image, str(path))
    assert_same_image(read_volume(path, "image"), sitk.ReadImage(str(path)))


def test_reference_nifti_files_read_identically():
    files = sorted(shared_data("ibsi").rglob("*.nii*")) + sorted(shared_data("ibsi_suv_dro").rglob("*.nii*"))
    assert files
    for path in files:
        assert_same_image(read_volume(path, "image"), sitk.ReadImage(str(path)))


@pytest.mark.parametrize("vox_offset", [0.0, 348.0, 352.0, 360.0])
def test_unusual_data_offsets_read_like_itk(tmp_path, vox_offset):
    """ITK's NIfTI library has its own rule for offsets below the 352-byte header; those go through ITK."""
    values = np.arange(60, dtype="f4").reshape(3, 4, 5)
    raw = nifti1_bytes(values, "<", vox_offset=vox_offset)
    if vox_offset > 352:
        raw = raw[:352] + bytes(int(vox_offset) - 352) + raw[352:]
    path = tmp_path / "offset.nii"
    path.write_bytes(raw)
    ours, itk = read_both(path)
    if isinstance(itk, Exception):
        assert isinstance(ours, ScanError)
    else:
        assert_same_image(ours, itk)


def test_gzip_members_padding_and_damage(tmp_path):
    """A .nii.gz may hold several gzip members (pigz, concatenated writes), zero padding between them; each member's
    CRC is checked and a cut stream is refused, naming the file, never read as a shorter volume."""
    volume = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    whole = write_volume(volume, tmp_path / "one.nii.gz")
    raw = gzip.decompress(whole.read_bytes())
    padded = tmp_path / "padded.nii.gz"
    padded.write_bytes(gzip.compress(raw[:200]) + b"\0" * 16 + gzip.compress(raw[200:]))
    assert nifti.inflate(padded, padded.read_bytes(), "image") == raw
    split = tmp_path / "members.nii.gz"  # ITK reads the header of this one too (not of the padded one)
    split.write_bytes(gzip.compress(raw[:200]) + gzip.compress(raw[200:]))
    assert np.array_equal(sitk.GetArrayFromImage(read_volume(split, "image")), volume)
    good = whole.read_bytes()
    bad_crc = good[:-8] + bytes(4) + good[-4:]
    for name, data, why in (("cut.nii.gz", good[: len(good) // 2], "truncated or corrupt"),
                            ("crc.nii.gz", bad_crc, "CRC"), ("empty.nii.gz", b"", "empty")):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ScanError, match=why) as err:
            read_volume(path, "image")
        assert name in str(err.value)


@pytest.mark.parametrize("members", [1, 3])
@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_a_large_read_gives_the_files_bytes_and_their_sha256(tmp_path, members, suffix):
    """A volume of 1.6 MB, in one or several gzip members: the same bytes as ``gzip.decompress``, the sha256 of the
    file as stored (recorded by the reader, no second read), and the image ITK reads."""
    import hashlib

    values = np.random.default_rng(7).normal(size=(40, 90, 110)).astype(np.float32)  # 1.6 MB of voxels
    raw = nifti1_bytes(values, "<")
    path = tmp_path / f"big{suffix}"
    if suffix == ".nii":
        path.write_bytes(raw)
    else:
        cuts = np.linspace(0, len(raw), members + 1).astype(int)
        pieces = zip(cuts[:-1], cuts[1:], strict=True)
        path.write_bytes(b"".join(gzip.compress(raw[a:b], compresslevel=1) for a, b in pieces))
    assert nifti.inflate(path, path.read_bytes(), "image") == raw
    digests: dict = {}
    assert_same_image(read_volume(path, "image", digests), sitk.ReadImage(str(path)))
    assert digests == {path: hashlib.sha256(path.read_bytes()).hexdigest()}
