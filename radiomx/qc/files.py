"""Where QC pictures live in OUT, what identifies one (its render key), and writing them atomically.

Layout: ``OUT/qc/<patient>/<session>/<tracer>.png`` and ``<tracer>.thumb.jpg`` beside it (the report's inline
thumbnail). A cohort without sessions (session "") has no session level: ``OUT/qc/<patient>/<tracer>.png``, as
its own folders have none; no "_" placeholder that could clash with a real session name. A tracer is a file, a
session a folder, so the two forms never collide.

The render key is stored inside the PNG (text chunk), so the picture says itself what it was drawn from and there
is no separate state to drift: it hashes the scan's work key (image, mask, parameters, lesion options: everything
that changes rows), the reference-region files' signatures, the display window and ``QC_VERSION``. A rerun
renders a scan only when the key differs, and a no-change rerun writes nothing.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from radiomx.fingerprint import canonical_sha256, stat_signature
from radiomx.params.paramset import ParamSet
from radiomx.qc.windows import display_window
from radiomx.records import QcPicture, Scan, ScanKey
from radiomx.store.atomic import atomic_path

#: Bump when the picture's content changes for the same inputs (layout, colours, caption): re-renders everything.
#: "2": one mm-per-pixel scale for both panels, DICOM-embedded reference regions drawn, the NEGATIVE banner beside
#: the panels (issue 21, point 15).
#: "3": the figure sized to the panels (no blank lower half on small or wide grids), the colour bar as tall as the
#: panels, labels placed where they cover no other label or outline.
QC_VERSION = "3"
KEY_CHUNK = "radiomx-qc-key"


def qc_folder(out: Path) -> Path:
    return Path(out) / "qc"


def picture_path(out: Path, key: ScanKey) -> Path:
    folder = qc_folder(out) / key.patient_id
    if key.session:
        folder = folder / key.session
    return folder / f"{key.tracer}.png"


def thumbnail_path(out: Path, key: ScanKey) -> Path:
    path = picture_path(out, key)
    return path.with_name(f"{key.tracer}.thumb.jpg")


def picture_key(work_key: str, window: tuple[float, float], references: dict[str, str]) -> str:
    """``references``: region file name -> its stat signature (size + mtime); see the module docstring."""
    return canonical_sha256({"work": work_key, "qc": QC_VERSION, "window": list(window),
                             "references": dict(sorted(references.items()))})


def reference_signatures(scan: Scan) -> dict[str, str]:
    """The scan's reference-region files (as discovery found them) -> stat signature; regions inside a DICOM mask
    are covered by the work key (the mask's hash)."""
    return {path.name: stat_signature(path) for _, path in scan.references}


def render_key(work_key: str, params: ParamSet, scan: Scan) -> str:
    """What this scan's picture would be drawn from now (without importing matplotlib or SimpleITK: a no-change
    ``radiomx qc`` rerun only compares keys)."""
    return picture_key(work_key, display_window(params), reference_signatures(scan))


def stored_key(out: Path, key: ScanKey) -> str:
    """The render key inside the scan's PNG; "" when there is no picture (or an unreadable one)."""
    path = picture_path(out, key)
    if not path.is_file():
        return ""
    from PIL import Image, UnidentifiedImageError

    with contextlib.suppress(OSError, UnidentifiedImageError), Image.open(path) as picture:
        return str(picture.info.get(KEY_CHUNK, ""))
    return ""


def write_picture(out: Path, key: ScanKey, picture: QcPicture) -> None:
    """Thumbnail first, PNG last: the PNG carries the key, so a kill in between leaves a picture that the next
    run sees as stale (or missing) and renders again."""
    with atomic_path(thumbnail_path(out, key)) as tmp:
        tmp.write_bytes(picture.thumbnail)
    with atomic_path(picture_path(out, key)) as tmp:
        tmp.write_bytes(picture.png)


def remove_pictures(out: Path, keys: list[ScanKey]) -> int:
    """Delete the pictures and thumbnails of ``keys`` (pruned scans) and the folders left empty; returns how many
    pictures were removed."""
    removed = 0
    for key in keys:
        for path in (picture_path(out, key), thumbnail_path(out, key)):
            if path.is_file():
                path.unlink()
                removed += path.suffix == ".png"
        folder = picture_path(out, key).parent
        while folder != qc_folder(out) and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent
    return removed
