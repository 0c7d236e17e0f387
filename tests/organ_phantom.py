"""A synthetic PET/CT patient for organ-derived reference regions: organs defined analytically in patient space
(LPS mm), rasterized on a CT grid (the organ masks, as a segmenter writes them) and, as SUV values, on a PET grid of
other spacing, origin and extent.

Known answers by construction. Every organ part has one uniform SUV: liver right lobe 2.0 and left lobe 3.0 (split
by the plane x = LOBE_SPLIT_X), descending thoracic aorta 1.7 while the ascending aorta with the arch is 1.3 and the
abdominal aorta 2.1, spleen 1.5, left adrenal 3.2 and right adrenal 2.2, vertebral bodies L1-L5 1.1 with posterior
processes of 0.7, lungs 0.4, background 0.5, lesions 6-9. A VOI that strays from its part therefore has another
mean. Each value is painted on the PET voxels whose centres lie in the part grown by ``HALO_MM`` (more than the
nearest-neighbour resampling can move an organ's boundary: half a CT voxel diagonal), so any voxel of the
resampled mask reads its organ's value; parts are at least 2 halos apart.

The liver's deepest point lies under a large lesion in the right lobe; without the lesion margin a VOI would sit
on the lesion, and a VOI placed at the deepest point of the liver minus the lesion (ignoring "right lobe") would
stray into the left lobe (``tests/test_organ_references.py`` shows both).
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

PET_SPACING = (4.07283, 4.07283, 3.27)
PET_SIZE = (80, 64, 130)
PET_ORIGIN = (-162.9, -130.3, -250.0)
CT_SPACING = (1.9, 1.9, 2.5)
CT_SIZE = (180, 142, 200)
CT_ORIGIN = (-170.3, -140.7, -262.1)
HALO_MM = 3.0
LOBE_SPLIT_X = -25.0
BACKGROUND = 0.5

# Spine: vertebra bodies 40 x 30 x 20 mm (x, y, z), pitch 24 mm, with an 8 mm wide spinous process behind.
LEVELS = ("L5", "L4", "L3", "L2", "L1", "T12", "T11", "T10", "T9", "T8", "T7", "T6", "T5", "T4", "T3")
LEVEL_Z = {level: -200.0 + 24.0 * k for k, level in enumerate(LEVELS)}
BODY_X, BODY_Y, BODY_HALF_Z = (-20.0, 20.0), (50.0, 80.0), 10.0
PROCESS_X, PROCESS_Y, PROCESS_HALF_Z = (-4.0, 4.0), (80.0, 105.0), 7.0

# Aorta: centreline polyline, tube radius 11 mm.
AORTA_RADIUS = 11.0
ASCENDING = ((0.0, -25.0, 40.0), (0.0, -25.0, 120.0))
DESCENDING_TOP, HIATUS_Z, BIFURCATION_Z = (25.0, 28.0, 120.0), -70.0, -190.0

VALUES = {"liver_right": 2.0, "liver_left": 3.0, "aorta_ascending_arch": 1.3, "aorta_descending": 1.7,
          "aorta_abdominal": 2.1, "spleen": 1.5, "adrenal_gland_left": 3.2, "adrenal_gland_right": 2.2,
          "vertebral_body": 1.1, "vertebral_process": 0.7, "lung": 0.4}

#: TotalSegmentator v2 ``total`` label values of the classes written (``map_to_binary.py``).
TOTALSEG_LABELS = {"spleen": 1, "liver": 5, "adrenal_gland_right": 8, "adrenal_gland_left": 9,
                   "lung_upper_lobe_right": 12, "brain": 90, "aorta": 52,
                   **{f"vertebrae_{lv}": v for lv, v in (("L5", 27), ("L4", 28), ("L3", 29), ("L2", 30), ("L1", 31),
                                                          ("T12", 32), ("T11", 33), ("T10", 34), ("T9", 35),
                                                          ("T8", 36), ("T7", 37), ("T6", 38), ("T5", 39), ("T4", 40),
                                                          ("T3", 41))}}


def ellipsoid(points: np.ndarray, centre, radii, grow: float = 0.0) -> np.ndarray:
    """Inside the ellipsoid; ``grow`` > 0 scales it so that it holds every point within ``grow`` mm of it
    (scaling by 1 + grow / smallest radius contains the grow-offset of an ellipsoid)."""
    radii = np.asarray(radii, float) * (1.0 + grow / min(radii))
    return (((points - np.asarray(centre, float)) / radii) ** 2).sum(axis=-1) <= 1.0


def box(points: np.ndarray, low, high, grow: float = 0.0) -> np.ndarray:
    return np.all((points >= np.asarray(low, float) - grow) & (points <= np.asarray(high, float) + grow), axis=-1)


def _segment_distance(points: np.ndarray, a, b) -> np.ndarray:
    a, b = np.asarray(a, float), np.asarray(b, float)
    ab = b - a
    t = np.clip(((points - a) @ ab) / float(ab @ ab), 0.0, 1.0)
    return np.linalg.norm(points - (a + t[..., None] * ab), axis=-1)


def _arch_points(n: int = 48) -> np.ndarray:
    start, end = np.array(ASCENDING[1]), np.array(DESCENDING_TOP)
    middle, radius = (start + end) / 2, np.linalg.norm(end - start) / 2
    u = (end - start) / np.linalg.norm(end - start)
    theta = np.linspace(np.pi, 0.0, n)
    return middle + radius * (np.cos(theta)[:, None] * u + np.sin(theta)[:, None] * np.array([0.0, 0.0, 1.0]))


def aorta_parts(points: np.ndarray, grow: float = 0.0) -> dict[str, np.ndarray]:
    """Ascending aorta + arch, descending thoracic aorta (above the hiatus), abdominal aorta."""
    r = AORTA_RADIUS + grow
    arch = _arch_points()
    near_arch = np.min([_segment_distance(points, arch[k], arch[k + 1]) for k in range(len(arch) - 1)], axis=0)
    ascending = (_segment_distance(points, *ASCENDING) <= r) | (near_arch <= r)
    top = np.array(DESCENDING_TOP)
    line = _segment_distance(points, top, (top[0], top[1], BIFURCATION_Z)) <= r
    z = points[..., 2]
    return {"aorta_ascending_arch": ascending, "aorta_descending": line & ~ascending & (z >= HIATUS_Z),
            "aorta_abdominal": line & ~ascending & (z < HIATUS_Z)}


def vertebra_parts(points: np.ndarray, level: str, grow: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    zc = LEVEL_Z[level]
    body = box(points, (BODY_X[0], BODY_Y[0], zc - BODY_HALF_Z), (BODY_X[1], BODY_Y[1], zc + BODY_HALF_Z), grow)
    process = box(points, (PROCESS_X[0], PROCESS_Y[0], zc - PROCESS_HALF_Z),
                  (PROCESS_X[1], PROCESS_Y[1], zc + PROCESS_HALF_Z), grow)
    return body, process


LIVER_RIGHT = ((-75.0, -20.0, -70.0), (62.0, 62.0, 62.0))
LIVER_LEFT = ((5.0, -40.0, -65.0), (45.0, 45.0, 50.0))
SPLEEN = ((95.0, 40.0, -95.0), (26.0, 50.0, 50.0))
ADRENAL_LEFT = ((34.0, 46.0, -88.0), (46.0, 66.0, -62.0))
ADRENAL_RIGHT = ((-46.0, 46.0, -85.0), (-34.0, 66.0, -59.0))
LUNG_RIGHT = ((-80.0, 0.0, 75.0), (45.0, 55.0, 60.0))
BRAIN = ((0.0, 0.0, 215.0), (60.0, 70.0, 15.0))


def _ellipsoid_box(centre, radii, grow: float = 0.0):
    margin = np.asarray(radii, float) * (1.0 + grow / min(radii)) + 1.0
    return np.asarray(centre, float) - margin, np.asarray(centre, float) + margin


def _aorta_box(grow: float = 0.0):
    points = np.vstack([*ASCENDING, _arch_points(), DESCENDING_TOP, (*DESCENDING_TOP[:2], BIFURCATION_Z)])
    return points.min(axis=0) - AORTA_RADIUS - grow - 1.0, points.max(axis=0) + AORTA_RADIUS + grow + 1.0


def _vertebra_box(level: str, grow: float = 0.0):
    zc = LEVEL_Z[level]
    return (np.array([BODY_X[0], BODY_Y[0], zc - BODY_HALF_Z]) - grow - 1.0,
            np.array([BODY_X[1], PROCESS_Y[1], zc + BODY_HALF_Z]) + grow + 1.0)


def _parts(grow: float):
    """(name, world box, function of points) of every organ part, in painting order."""
    g = grow
    out = [
        ("lung_upper_lobe_right", _ellipsoid_box(*LUNG_RIGHT, g), lambda p: ellipsoid(p, *LUNG_RIGHT, grow=g)),
        ("liver_right", _ellipsoid_box(*LIVER_RIGHT, g), lambda p: ellipsoid(p, *LIVER_RIGHT, grow=g)),
        ("liver_left", _ellipsoid_box(*LIVER_LEFT, g), lambda p: ellipsoid(p, *LIVER_LEFT, grow=g)),
        ("spleen", _ellipsoid_box(*SPLEEN, g), lambda p: ellipsoid(p, *SPLEEN, grow=g)),
        ("adrenal_gland_left", (np.array(ADRENAL_LEFT[0]) - g - 1, np.array(ADRENAL_LEFT[1]) + g + 1),
         lambda p: box(p, *ADRENAL_LEFT, grow=g)),
        ("adrenal_gland_right", (np.array(ADRENAL_RIGHT[0]) - g - 1, np.array(ADRENAL_RIGHT[1]) + g + 1),
         lambda p: box(p, *ADRENAL_RIGHT, grow=g)),
        ("brain", _ellipsoid_box(*BRAIN, g), lambda p: ellipsoid(p, *BRAIN, grow=g)),
    ]
    for level in LEVELS:
        out.append((f"vertebrae_{level}", _vertebra_box(level, g), lambda p, level=level: vertebra_parts(p, level, g)))
    out.append(("aorta", _aorta_box(g), lambda p: aorta_parts(p, g)))
    return out


def rasterize(image: sitk.Image, world_box, inside) -> tuple[tuple[slice, slice, slice], object] | None:
    """``inside`` evaluated at the voxel centres of ``image`` within ``world_box`` (only there: fast)."""
    lo, hi = world_box
    corners = [(x, y, z) for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
    index = np.array([image.TransformPhysicalPointToContinuousIndex(tuple(map(float, c))) for c in corners])
    start = np.maximum(np.floor(index.min(axis=0)).astype(int), 0)
    stop = np.minimum(np.ceil(index.max(axis=0)).astype(int) + 1, image.GetSize())
    if (stop <= start).any():
        return None
    sub = (slice(start[2], stop[2]), slice(start[1], stop[1]), slice(start[0], stop[0]))
    return sub, inside(centres(image, sub))


def organ_masks(image: sitk.Image) -> dict[str, np.ndarray]:
    """Every organ class as its segmenter would label it, on ``image``'s grid."""
    shape = image.GetSize()[::-1]
    out: dict[str, np.ndarray] = {}
    for name, world_box, inside in _parts(0.0):
        found = rasterize(image, world_box, inside)
        target = "liver" if name.startswith("liver") else name
        mask = out.setdefault(target, np.zeros(shape, dtype=bool))
        if found is None:
            continue
        sub, value = found
        if name == "aorta":
            value = value["aorta_ascending_arch"] | value["aorta_descending"] | value["aorta_abdominal"]
        elif name.startswith("vertebrae_"):
            value = value[0] | value[1]
        mask[sub] |= value
    return out


def suv_values(image: sitk.Image) -> np.ndarray:
    """The PET's SUV on ``image``'s grid (module docstring), lesions not included."""
    values = np.full(image.GetSize()[::-1], BACKGROUND, dtype=np.float32)
    for name, world_box, inside in _parts(HALO_MM):
        found = rasterize(image, world_box, inside)
        if found is None or name == "brain":
            continue
        sub, value = found
        view = values[sub]
        if name == "aorta":
            for part, part_inside in value.items():
                view[part_inside] = VALUES[part]
        elif name.startswith("vertebrae_"):
            body = vertebra_parts(centres(image, sub), name.removeprefix("vertebrae_"))[0]
            view[value[1] & ~value[0]] = VALUES["vertebral_process"]
            view[body] = VALUES["vertebral_body"]
        elif name.startswith("liver"):
            right = centres(image, sub)[..., 0] < LOBE_SPLIT_X
            view[value & right] = VALUES["liver_right"]
            view[value & ~right] = VALUES["liver_left"]
        elif name.startswith("lung"):
            view[value] = VALUES["lung"]
        else:
            view[value] = VALUES[name]
    return values


@dataclass(frozen=True)
class Lesion:
    name: str
    centre: tuple[float, float, float]
    radius: float
    value: float


LESIONS = (
    Lesion("liver", (-75.0, -20.0, -70.0), 12.0, 7.0),       # at the right lobe's deepest point
    Lesion("bone", (0.0, 65.0, LEVEL_Z["L3"]), 8.0, 6.0),     # in the body of L3
    Lesion("spleen", (95.0, 40.0, -95.0), 8.0, 8.0),
    Lesion("node", (-10.0, -70.0, 0.0), 10.0, 9.0),           # anterior, outside every organ
    Lesion("adrenal", (40.0, 56.0, -75.0), 5.0, 8.5),         # an adenoma in the left adrenal
    Lesion("lung", (-80.0, 0.0, 75.0), 8.0, 6.5),
)


def grid_image(size, spacing, origin, direction=(1, 0, 0, 0, 1, 0, 0, 0, 1), pixel=sitk.sitkUInt8) -> sitk.Image:
    image = sitk.Image([int(v) for v in size], pixel)
    image.SetSpacing(tuple(float(v) for v in spacing))
    image.SetOrigin(tuple(float(v) for v in origin))
    image.SetDirection(tuple(float(v) for v in direction))
    return image


def centres(image: sitk.Image, sub: tuple[slice, slice, slice] | None = None) -> np.ndarray:
    """Patient coordinates of the voxel centres of ``image`` (within ``sub``, z y x slices), shaped (z, y, x, 3)."""
    size = image.GetSize()
    sub = sub or (slice(0, size[2]), slice(0, size[1]), slice(0, size[0]))
    k, j, i = np.meshgrid(*(np.arange(s.start, s.stop) for s in sub), indexing="ij")
    xyz = np.stack([i, j, k], axis=-1).astype(np.float64) * np.asarray(image.GetSpacing())
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    return xyz @ direction.T + np.asarray(image.GetOrigin())


def as_image(array: np.ndarray, like: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(like)
    return image


@dataclass
class Phantom:
    pet: sitk.Image
    #: Lesion masks on the PET grid: name -> boolean (z, y, x).
    lesions: dict[str, np.ndarray]
    ct: sitk.Image
    #: Organ masks on the CT grid: class -> boolean (z, y, x).
    organs: dict[str, np.ndarray]
    files: dict[str, Path] = field(default_factory=dict)


def build(lesions: tuple[Lesion, ...] = LESIONS, ct_direction=(1, 0, 0, 0, 1, 0, 0, 0, 1),
          ct_origin=CT_ORIGIN) -> Phantom:
    pet = grid_image(PET_SIZE, PET_SPACING, PET_ORIGIN, pixel=sitk.sitkFloat32)
    values = suv_values(pet)
    lesion_masks = {}
    for lesion in lesions:
        inside = np.zeros(values.shape, dtype=bool)
        world_box = (np.asarray(lesion.centre) - lesion.radius - 1, np.asarray(lesion.centre) + lesion.radius + 1)
        sub, found = rasterize(pet, world_box, lambda p, c=lesion.centre, r=lesion.radius: ellipsoid(p, c, (r,) * 3))
        inside[sub] = found
        values[inside] = lesion.value
        lesion_masks[lesion.name] = inside
    ct = grid_image(CT_SIZE, CT_SPACING, ct_origin, ct_direction)
    organs = organ_masks(ct)
    return Phantom(as_image(values.astype(np.float32), pet), lesion_masks, ct, organs)


# --- writing the organ masks as segmenters do ------------------------------------------------------------------------

def write_folder(phantom: Phantom, folder: Path, names: dict[str, str] | None = None) -> Path:
    """One ``<class>.nii.gz`` per organ (TotalSegmentator's default output); ``names`` renames classes (MOOSE)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, mask in phantom.organs.items():
        sitk.WriteImage(as_image(mask.astype(np.uint8), phantom.ct), str(folder / f"{(names or {}).get(name, name)}"
                                                                                  ".nii.gz"), True)
    return folder


def label_map(phantom: Phantom, labels: dict[str, int] = TOTALSEG_LABELS) -> np.ndarray:
    out = np.zeros(next(iter(phantom.organs.values())).shape, dtype=np.uint8)
    for name, mask in phantom.organs.items():
        out[mask] = labels[name]
    return out


def caret_xml(labels: dict[str, int]) -> bytes:
    """The label XML TotalSegmentator's ``add_label_map_to_nifti`` writes (same layout and CDATA names)."""
    body = "".join(f'<Label Key="{value}" Red="1.0" Green="0.0" Blue="0.0" Alpha="1"><![CDATA[{name}]]></Label>\n'
                   for name, value in sorted(labels.items(), key=lambda item: item[1]))
    xml = ('<?xml version="1.0" encoding="UTF-8"?> <CaretExtension>  <Date><![CDATA[2013-07-14T05:45:09]]></Date>   '
           '<VolumeInformation Index="0">   <LabelTable>\n' + body + '\n  </LabelTable>  <StudyMetaDataLinkSet>  '
           '</StudyMetaDataLinkSet>  <VolumeType><![CDATA[Label]]></VolumeType>   </VolumeInformation>'
           '</CaretExtension>\n              ')
    return xml.encode("utf-8")


def with_nifti_extension(plain_nii: bytes, content: bytes, ecode: int = 0) -> bytes:
    """A single-file NIfTI-1 with one header extension, laid out as nibabel writes it: extender [1, 0, 0, 0], then
    esize (content padded with zeros to a multiple of 16, plus 8), ecode, content; vox_offset moved past it."""
    header, data = bytearray(plain_nii[:348]), plain_nii[int(struct.unpack("<f", plain_nii[108:112])[0]):]
    padded = content + b"\0" * (-(len(content) + 8) % 16)
    extension = struct.pack("<2i", len(padded) + 8, ecode) + padded
    vox_offset = 352 + len(extension)
    header[108:112] = struct.pack("<f", float(vox_offset))
    return bytes(header) + b"\x01\0\0\0" + extension + data


def write_multilabel(phantom: Phantom, path: Path, table: str = "extension") -> Path:
    """TotalSegmentator's ``--ml`` output: one label map, names in its NIfTI header extension (``table`` =
    "extension"), or in a TSV table beside it ("tsv": ``<stem>.tsv`` with index and name, as a BIDS _dseg.tsv)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    plain = path.with_name("plain-" + path.name.removesuffix(".gz"))
    sitk.WriteImage(as_image(label_map(phantom), phantom.ct), str(plain), False)
    raw = plain.read_bytes()
    plain.unlink()
    if table == "extension":
        raw = with_nifti_extension(raw, caret_xml(TOTALSEG_LABELS))
    else:
        stem = path.name.removesuffix(".gz").removesuffix(".nii")
        rows = "".join(f"{v}\t{n}\n" for n, v in sorted(TOTALSEG_LABELS.items(), key=lambda item: item[1]))
        path.with_name(stem + ".tsv").write_text("index\tname\n" + rows)
    path.write_bytes(gzip.compress(raw, 1) if path.name.endswith(".gz") else raw)
    return path
