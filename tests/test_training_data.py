"""Training data: the split rule, weak frame-class labels, augmentation targets (no torch needed)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from workstation.training import data as D


def _standard_plane_labels(size: int = 256) -> np.ndarray:
    """A PSFHS-like label map: an elongated PS on the left, a round head below-right of it."""
    labels = np.zeros((size, size), np.uint8)
    cv2.ellipse(labels, (70, 90), (40, 9), 25, 0, 360, 1, -1)
    cv2.circle(labels, (160, 160), 60, 2, -1)
    return labels


def test_hc18_second_plane_follows_its_fetus():
    for n in range(0, 800, 7):
        assert D.split_of(f"{n:03d}_2HC.png") == D.split_of(f"{n:03d}_HC.png") == D.split_of(f"{n:03d}_HC")


def test_split_on_the_real_cases_is_disjoint(shared_data):
    for cases_of in (D.psfhs_cases, D.hc18_cases):
        train = {c.case_id for c in cases_of(shared_data, "train")}
        val = {c.case_id for c in cases_of(shared_data, "val")}
        assert train and val and train.isdisjoint(val)
        assert len(train | val) == len(cases_of(shared_data, "all"))


def test_frame_class_from_labels():
    labels = _standard_plane_labels()
    assert D.frame_class_from_labels(labels) == D.STANDARD_PLANE_INDEX
    assert D.frame_class_from_labels(np.where(labels == 1, 0, labels)) == D.ONE_STRUCTURE_INDEX
    assert D.frame_class_from_labels(np.where(labels == 2, 0, labels)) == D.ONE_STRUCTURE_INDEX
    sliver = np.where(labels == 1, 0, labels)
    sliver[0, :5] = 1  # a few PS pixels: partly visible, class unknown
    assert D.frame_class_from_labels(sliver) == D.IGNORE
    assert D.frame_class_from_labels(np.zeros_like(labels)) == D.IGNORE


@pytest.mark.parametrize("seed", range(6))
def test_one_structure_frames_lose_exactly_one_structure(seed):
    labels = _standard_plane_labels()
    unit = np.where(labels > 0, 0.8, 0.2).astype(np.float32)
    image, new_labels = D.make_one_structure(unit, labels, np.random.default_rng(seed))
    assert image.shape == labels.shape == new_labels.shape and image.dtype == np.float32
    assert D.frame_class_from_labels(new_labels) == D.ONE_STRUCTURE_INDEX


def test_no_anatomy_frames_are_valid_images():
    rng = np.random.default_rng(0)
    real = np.random.default_rng(1).uniform(0, 1, (256, 256)).astype(np.float32)
    for _ in range(12):
        image = D.make_no_anatomy(rng, 256, real=real)
        assert image.shape == (256, 256) and image.min() >= 0.0 and image.max() <= 1.0


def test_similarity_keeps_aop_and_scales_hsd():
    labels = _standard_plane_labels()
    reference = D.reference_targets(labels)
    assert reference is not None
    checked = 0
    for seed in range(8):
        _, warped, scale = D.random_similarity(np.zeros(labels.shape, np.float32), labels, np.random.default_rng(seed),
                                               max_shift=0.0)
        measured = D.reference_targets(warped)
        if measured is None:
            continue
        checked += 1
        assert measured[0] == pytest.approx(reference[0], abs=3.0)
        assert measured[1] == pytest.approx(reference[1] * scale, rel=0.1, abs=3.0)
    assert checked >= 4


def _write_fake_dataset(root):
    """Three PSFHS cases and two HC18 cases in the ../shared/data layout."""
    (root / "psfhs" / "images").mkdir(parents=True)
    (root / "psfhs" / "labels").mkdir()
    (root / "hc18" / "images").mkdir(parents=True)
    (root / "hc18" / "masks").mkdir()
    labels = _standard_plane_labels()
    for i in range(3):
        cv2.imwrite(str(root / "psfhs" / "images" / f"0{i}.png"), (labels * 90 + 20).astype(np.uint8))
        cv2.imwrite(str(root / "psfhs" / "labels" / f"0{i}_label.png"), labels)
    for name in ("000_HC", "000_2HC"):
        image = np.full((270, 400), 30, np.uint8)
        mask = np.zeros((270, 400), np.uint8)
        cv2.ellipse(mask, (200, 135), (120, 90), 10, 0, 360, 1, -1)
        cv2.imwrite(str(root / "hc18" / "images" / f"{name}.png"), image + mask * 150)
        cv2.imwrite(str(root / "hc18" / "masks" / f"{name}_mask.png"), mask)


def test_training_mix_samples(tmp_path):
    _write_fake_dataset(tmp_path)
    psfhs, hc18 = D.psfhs_cases(tmp_path), D.hc18_cases(tmp_path)
    assert len(psfhs) == 3 and len(hc18) == 2
    mix = D.TrainingMix(psfhs, hc18, seed=0, p_one_structure=0.3, p_no_anatomy=0.3)
    seen = set()
    for epoch in range(4):
        mix.set_epoch(epoch)
        for index in range(len(mix)):
            sample = mix[index]
            assert sample["image"].shape == (1, 256, 256) and sample["image"].dtype == np.float32
            assert -1.0 - 1e-6 <= sample["image"].min() and sample["image"].max() <= 1.0 + 1e-6
            assert sample["seg"].shape == (256, 256)
            plane = int(sample["plane"])
            seen.add(plane)
            if index >= 3:  # HC18: not transperineal, head only
                assert plane == D.BIOMETRY_PLANE_INDEX and not (sample["seg"] == 1).any()
                assert not sample["regression_mask"]
            if plane == D.NO_ANATOMY_INDEX:
                assert not sample["seg"].any()
            if sample["regression_mask"]:
                assert plane == D.STANDARD_PLANE_INDEX and 0.0 < sample["regression"][0] < 1.0
    assert {D.STANDARD_PLANE_INDEX, D.BIOMETRY_PLANE_INDEX} <= seen
    # reproducible: same seed, epoch and index -> same sample
    mix.set_epoch(1)
    again = D.TrainingMix(psfhs, hc18, seed=0, p_one_structure=0.3, p_no_anatomy=0.3)
    again.set_epoch(1)
    for index in range(len(mix)):
        first, second = mix[index], again[index]
        assert np.array_equal(first["image"], second["image"]) and np.array_equal(first["seg"], second["seg"])
    other = D.TrainingMix(psfhs, hc18, seed=1, p_one_structure=0.3, p_no_anatomy=0.3)
    other.set_epoch(1)
    assert any(not np.array_equal(mix[i]["image"], other[i]["image"]) for i in range(len(mix)))


def test_validation_set_kinds(tmp_path):
    _write_fake_dataset(tmp_path)
    val = D.ValidationSet(D.psfhs_cases(tmp_path), D.hc18_cases(tmp_path), synthetic_each=2)
    kinds = [val[i]["kind"] for i in range(len(val))]
    assert kinds.count("psfhs") == 3 and kinds.count("hc18") == 2
    assert kinds.count("one_structure") == 2 and kinds.count("no_anatomy") == 2
