"""``features.speedups`` swaps two PyRadiomics internals for faster ones during radiomx's calls; they must return
exactly what the originals return, and the originals must be back afterwards."""

from __future__ import annotations

import numpy as np
import pytest
import radiomics
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from radiomics import base, imageoperations

from radiomx.features.extractor import extractor_for, lesion_inputs, prepare_image
from radiomx.features.speedups import cached_feature_names, fast_bin_edges, pyradiomics_speedups

from .test_crop_equivalence import params, volume

finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False, width=32)
values = st.one_of(
    arrays(np.float32, st.integers(1, 300), elements=finite),
    arrays(np.float64, st.integers(1, 300), elements=st.sampled_from([0.0, -0.0, 0.25, -0.25, 1.0, 3.75, 1e-9])),
    arrays(np.int16, st.integers(1, 300), elements=st.integers(-1024, 3000)),
)


@settings(max_examples=300, deadline=None)
@given(values=values, bin_width=st.sampled_from([0.01, 0.1, 0.25, 0.5, 1.0, 2.5, 25.0]))
def test_bin_edges_equal_the_original(values, bin_width):
    original = imageoperations.getBinEdges
    expected = np.asarray(original(values, binWidth=bin_width))
    got = np.asarray(fast_bin_edges(original)(values, binWidth=bin_width))
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_bin_count_path_is_untouched():
    values = np.random.default_rng(0).normal(size=500)
    original = imageoperations.getBinEdges
    np.testing.assert_array_equal(fast_bin_edges(original)(values, binCount=16), original(values, binCount=16))


def test_feature_names_equal_the_original_and_are_private_copies():
    original = base.RadiomicsFeaturesBase.__dict__["getFeatureNames"]
    cached = cached_feature_names(original)
    for cls in radiomics.getFeatureClasses().values():
        first = cached.__get__(None, cls)()
        assert first == original.__get__(None, cls)()
        first.clear()
        assert cached.__get__(None, cls)() == original.__get__(None, cls)()


def test_originals_are_restored_even_after_an_error():
    edges, names = imageoperations.getBinEdges, base.RadiomicsFeaturesBase.__dict__["getFeatureNames"]
    with pytest.raises(RuntimeError), pyradiomics_speedups():
        assert imageoperations.getBinEdges is not edges
        raise RuntimeError("boom")
    assert imageoperations.getBinEdges is edges
    assert base.RadiomicsFeaturesBase.__dict__["getFeatureNames"] is names


@pytest.mark.parametrize("image_types", [{"Original": {}}, {"Original": {}, "LoG": {"sigma": [1.0, 3.0]},
                                                              "Wavelet": {}}])
def test_every_feature_value_is_identical_with_and_without(image_types):
    """The same prepared lesion input through the same extractor, with and without the swap: all classes, every
    value bit for bit."""
    image, labels = volume(seed=3)
    p = params({"resampledPixelSpacing": [2, 2, 2], "interpolator": "sitkBSpline"}, image_types, classes={})
    from radiomx.features.lesions import split_lesions

    lesion_map = split_lesions(labels)
    for lesion in lesion_map.lesions[:2]:
        item = lesion_inputs(p, prepare_image(p, image), lesion_map.labels, lesion)
        extractor = extractor_for(p, item.mode)
        plain = extractor.execute(item.image, item.mask, label=lesion.lesion_id)
        with pyradiomics_speedups():
            fast = extractor.execute(item.image, item.mask, label=lesion.lesion_id)
        assert plain.keys() == fast.keys() and len(plain) > 100
        for name in plain:
            assert np.array_equal(np.asarray(plain[name]), np.asarray(fast[name])), name


def test_overlapping_threads_restore_the_true_originals():
    """Two threads whose swaps overlap (A enters, B enters, A leaves, B leaves) leave PyRadiomics as it was."""
    import threading

    edges, names = imageoperations.getBinEdges, base.RadiomicsFeaturesBase.__dict__["getFeatureNames"]
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = []

    def a():
        with pyradiomics_speedups():
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def b():
        a_in.wait(5)
        with pyradiomics_speedups():
            b_in.set()
            a_out.wait(5)
            seen.append(imageoperations.getBinEdges is not edges)  # still swapped after A left

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == [True]
    assert imageoperations.getBinEdges is edges
    assert base.RadiomicsFeaturesBase.__dict__["getFeatureNames"] is names


def test_feature_names_are_inspected_once_per_class_for_the_whole_process():
    """``pyradiomics_speedups()`` builds a new replacement on every entry (one per lesion); the names it caches
    must outlive it, or each lesion pays ``inspect.getmembers`` again for every class."""
    original = base.RadiomicsFeaturesBase.__dict__["getFeatureNames"]
    calls: list[type] = []

    def counting(cls):
        calls.append(cls)
        return original.__func__(cls)

    class Probe(base.RadiomicsFeaturesBase):  # a class no other test has looked up
        def getAnswerFeatureValue(self):  # noqa: N802 - PyRadiomics' naming scheme
            return 42

    for _ in range(3):  # three lesions, three separate replacements, each called inside radiomx's block
        with pyradiomics_speedups():
            names = cached_feature_names(classmethod(counting)).__get__(None, Probe)()
        assert names == original.__get__(None, Probe)() and "Answer" in names
    assert calls == [Probe]


def test_other_threads_run_the_original_code_while_radiomx_extracts():
    """While a radiomx call holds the replacements in place, a PyRadiomics call on another thread (a user's own, in
    a notebook) runs the original code: the cached names are not used and the bin-edge input is not reduced."""
    import threading

    values = np.array([0.1, 0.2, 0.7, 1.3], dtype=np.float64)
    seen: list = []
    original_edges = imageoperations.getBinEdges
    inner_calls: list = []

    def spy(parameterValues, **kwargs):  # noqa: N803 - PyRadiomics' own argument name
        inner_calls.append(len(parameterValues))
        return original_edges(parameterValues, **kwargs)

    imageoperations.getBinEdges = spy  # the "original" the swap wraps
    try:
        with pyradiomics_speedups():
            imageoperations.getBinEdges(values, binWidth=0.25)  # this thread: reduced to (min, max)
            other = threading.Thread(target=lambda: seen.append(imageoperations.getBinEdges(values, binWidth=0.25)))
            other.start()
            other.join(10)
    finally:
        imageoperations.getBinEdges = original_edges
    assert inner_calls == [2, 4]
    assert np.array_equal(seen[0], original_edges(values, binWidth=0.25))
