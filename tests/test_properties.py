"""Property tests (hypothesis): random small label maps, including degenerate ones, never crash the lesion
splitter, it preserves every labelled voxel, and its ids are deterministic."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from radiomx.features.lesions import split_lesions
from radiomx.options import LesionOptions

label_maps = arrays(np.uint8, st.tuples(st.integers(1, 6), st.integers(1, 7), st.integers(1, 7)),
                    elements=st.sampled_from([0, 0, 0, 1, 2, 3, 255]))


def _image(values: np.ndarray) -> sitk.Image:
    image = sitk.Cast(sitk.GetImageFromArray(values), sitk.sitkUInt32)
    image.SetSpacing((2.0, 2.0, 3.0))
    return image


@settings(max_examples=150, deadline=None)
@given(label_maps)
def test_labels_mode_gives_one_lesion_per_label_and_keeps_every_voxel(values):
    result = split_lesions(_image(values), "labels")
    present = sorted(int(v) for v in np.unique(values) if v)
    assert [lesion.lesion_id for lesion in result.lesions] == present
    assert sum(lesion.voxel_count for lesion in result.lesions) == int(np.count_nonzero(values))
    for lesion in result.lesions:
        assert lesion.voxel_count == int(np.count_nonzero(values == lesion.lesion_id))


@settings(max_examples=150, deadline=None)
@given(label_maps)
def test_components_mode_preserves_voxels_and_is_deterministic(values):
    first = split_lesions(_image(values), "components")
    second = split_lesions(_image(values), "components")
    relabelled = sitk.GetArrayFromImage(first.labels)
    assert np.array_equal(relabelled > 0, values > 0)
    assert [les.lesion_id for les in first.lesions] == list(range(1, len(first.lesions) + 1))
    assert first.lesions == second.lesions
    assert np.array_equal(relabelled, sitk.GetArrayFromImage(second.labels))
    for lesion in first.lesions:  # a component never mixes source labels
        assert set(np.unique(values[relabelled == lesion.lesion_id])) == {lesion.source_label}
    # ids follow the raster order of each component's first voxel
    firsts = [int(np.argmax(relabelled.ravel() == les.lesion_id)) for les in first.lesions]
    by_label = [les.source_label for les in first.lesions]
    assert by_label == sorted(by_label)
    for label in set(by_label):
        mine = [f for f, lab in zip(firsts, by_label, strict=True) if lab == label]
        assert mine == sorted(mine)


@settings(max_examples=60, deadline=None)
@given(label_maps, st.sets(st.sampled_from([1, 2, 3, 7]), min_size=1))
def test_only_labels_restricts_without_losing_present_labels(values, only):
    result = split_lesions(_image(values), "labels", tuple(sorted(only)))
    assert {les.lesion_id for les in result.lesions} == {int(v) for v in np.unique(values) if v} & only
    assert set(result.present_labels) == {int(v) for v in np.unique(values) if v}


# --- the extractor wrapper: every lesion comes out as a row or as a failure, never a crash --------------------------

images = arrays(np.float32, st.just((5, 7, 7)),
                elements=st.one_of(st.floats(0, 20, width=32), st.just(0.0), st.just(1.0)))


@settings(max_examples=40, deadline=None)
@given(images, arrays(np.uint8, st.just((5, 7, 7)), elements=st.sampled_from([0, 0, 0, 1, 2, 3, 255])),
       st.sampled_from(["labels", "components"]))
def test_run_scan_gives_a_row_or_a_failure_for_every_lesion(tmp_path_factory, image, mask, mode):
    from radiomx.features.lesions import split_lesions as split
    from radiomx.params.paramset import default_params_root, resolve_params
    from radiomx.records import Layout, Scan, ScanKey
    from radiomx.run.worker import ScanTask, run_scan
    from radiomx.tracers import get_tracer

    from .conftest import write_volume

    folder = tmp_path_factory.mktemp("prop")
    write_volume(image, folder / "pet.nrrd", spacing=(4.0, 4.0, 4.0))
    write_volume(mask, folder / "mask.nrrd", spacing=(4.0, 4.0, 4.0))
    params = resolve_params(default_params_root(), get_tracer("18F-FDG"))
    scan = Scan(ScanKey("P", "", "18F-FDG"), folder, folder / "pet.nrrd", folder / "mask.nrrd")
    outcome = run_scan(ScanTask(scan, folder, Layout(pet_units="SUVbw"), params, LesionOptions(mode)))
    expected = {les.lesion_id for les in split(_image(mask), mode).lesions}
    produced = [row["lesion_id"] for row in outcome.rows] + [f.lesion_id for f in outcome.failures if f.lesion_id]
    assert sorted(produced) == sorted(expected)  # each lesion exactly once, as a row or a failure
    if not expected:  # an all-zero mask is a negative scan: data, not a failure
        assert outcome.failures == [] and outcome.status == "negative"
    assert all(not f.traceback for f in outcome.failures), [f.message for f in outcome.failures]
