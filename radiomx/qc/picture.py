"""One scan's QC picture: coronal and sagittal maximum-intensity projections in a fixed window, each lesion's
outline in its own colour with its lesion_id, the reference regions dashed in grey, a colour bar with the unit and
a caption with the keys and the SUV provenance.

Why MIPs: a reader checks in one glance that every hot spot has an outline, that no outline sits on the bladder,
and that the SUV scale is plausible (a liver at SUV 40 means a wrong dose or weight). Why outlines and not filled
masks: the uptake under the mask stays visible.

Geometry: the arrays are (z, y, x) in LPS order (``radiomx.qc.draw`` reorients), so the coronal view (max over y)
shows the patient's right on the viewer's left, and the sagittal view (max over x) shows anterior on the left;
head at the top in both. Axes are in mm, so voxels are square on screen whatever the slice thickness, and both
panels share one mm-per-pixel scale and one vertical placement (``panel_boxes``): a lesion sits at the same height
in both, and a 5 cm lesion is as wide in one as in the other, whatever the field of view's width and depth.
Nothing is drawn over the image but the outlines and their ids: a negative scan's banner stands beside the panels.
Outlines are the 0.5 iso-line of each lesion's projection on its voxel-centre grid: they run along the voxel edges,
so an outline's extent is the lesion's projected extent exactly. They are drawn without anti-aliasing, in exact palette
colours, so a reader (or a test) can find each one by colour; the MIP is the only grey in a panel (labels are dark
indigo on a white halo, reference regions slate blue), so its brightest voxel is its darkest grey pixel.

The picture records, in PNG text chunks, its render key (``radiomx.qc.files``) and each panel's mm -> pixel
mapping (``radiomx-qc-panels``), so tools can place findings on it without re-rendering.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patheffects import withStroke
from PIL import Image, PngImagePlugin

from radiomx.qc.files import KEY_CHUNK

if TYPE_CHECKING:  # the lesion figures come from the feature code; drawing needs only their fields
    from radiomx.features.indices import LesionValues

#: Distinct lesion colours (matplotlib's tab10 and tab20 light shades, greys removed: grey is the image's own
#: colour). A scan with more lesions than colours reuses them in order; the ids beside the outlines tell them apart.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
           "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5")
#: Not pure greys: the MIP is the only grey thing in a panel, so its pixels can be told from any annotation.
REFERENCE_COLOUR = "#55607a"
LABEL_COLOUR = "#14145a"
NEGATIVE_COLOUR = "#b00020"
FIGSIZE_IN = (11.0, 6.4)
DPI = 100
THUMBNAIL_WIDTH = 280
#: Lesions listed beside the panels; more are summarised in one line (their ids are still on the outlines).
LEGEND_ROWS = 30
PANELS_CHUNK = "radiomx-qc-panels"
#: Where the two MIPs go (figure fractions: left, bottom, width, height) and the gap between them.
PANELS_AREA = (0.01, 0.13, 0.69, 0.78)
PANELS_GAP = 0.01


@dataclass(frozen=True)
class Scene:
    """Everything a picture shows, as plain arrays: (z, y, x) in LPS order, spacing as (x, y, z) mm."""

    title: str
    caption: str
    image: np.ndarray
    spacing_xyz: tuple[float, float, float]
    #: lesion_id per voxel: one label map, or a tuple of layers when lesions overlap (each still outlined alone).
    labels: np.ndarray | tuple[np.ndarray, ...]
    lesions: tuple[LesionValues, ...]
    unit: str
    window: tuple[float, float]
    references: tuple[tuple[str, np.ndarray], ...] = ()
    #: "gray_r" (PET: hot is dark, as on a reading station's MIP) or "gray" (CT).
    cmap: str = "gray_r"
    #: lesion_id -> lesion name (SEG segment label, ROI name, label table), shown in the legend.
    names: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PanelMap:
    """mm -> PNG pixel for one panel: column = x0 + sx * u_mm, row = y0 + sy * v_mm (rows go down)."""

    x0: float
    y0: float
    sx: float
    sy: float

    def pixel(self, u_mm: float, v_mm: float) -> tuple[float, float]:
        return self.x0 + self.sx * u_mm, self.y0 + self.sy * v_mm


@dataclass
class Rendered:
    png: bytes
    thumbnail: bytes
    #: "coronal" (u = x mm, v = z mm) and "sagittal" (u = y mm, v = z mm).
    panels: dict[str, PanelMap] = field(default_factory=dict)
    #: lesion_id -> "#rrggbb" outline colour.
    colours: dict[int, str] = field(default_factory=dict)


def lesion_colours(lesion_ids: list[int]) -> dict[int, str]:
    return {lesion_id: PALETTE[i % len(PALETTE)] for i, lesion_id in enumerate(sorted(lesion_ids))}


def lesion_projections(labels: np.ndarray | tuple[np.ndarray, ...]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """lesion_id -> (coronal (z, x), sagittal (z, y)) boolean projections, from the lesion voxels only: one pass
    over the volume (np.flatnonzero: 2.5x faster than a 3D np.nonzero), not one comparison per lesion and view.
    Layers (lesions that overlap) are projected one by one, so a lesion nested in another keeps its own outline."""
    if isinstance(labels, tuple):
        return {k: v for layer in labels for k, v in lesion_projections(layer).items()}
    flat = np.flatnonzero(labels)
    z, y, x = np.unravel_index(flat, labels.shape)
    ids = labels.reshape(-1)[flat]
    out = {}
    nz, ny, nx = labels.shape
    for lesion_id in np.unique(ids):
        chosen = ids == lesion_id
        coronal, sagittal = np.zeros((nz, nx), bool), np.zeros((nz, ny), bool)
        coronal[z[chosen], x[chosen]] = True
        sagittal[z[chosen], y[chosen]] = True
        out[int(lesion_id)] = (coronal, sagittal)
    return out


def _outline(ax, projected: np.ndarray, du: float, dv: float, **style) -> None:
    """The 0.5 iso-line of a 0/1 projection on voxel centres, traced on the region's own bounding box padded by one
    voxel (so that outlines close at the border; a whole-body array per lesion costs 10x more)."""
    rows, cols = np.nonzero(projected)
    r0, c0 = rows.min(), cols.min()
    padded = np.pad(projected[r0:rows.max() + 1, c0:cols.max() + 1].astype(np.uint8), 1)
    u = (np.arange(padded.shape[1]) + c0 - 0.5) * du
    v = (np.arange(padded.shape[0]) + r0 - 0.5) * dv
    ax.contour(u, v, padded, levels=[0.5], antialiased=False, **style)


def _label_position(projected: np.ndarray, du: float, dv: float) -> tuple[float, float]:
    rows, cols = np.nonzero(projected)
    return (cols.max() + 1.5) * du, (rows.max() + 1) * dv


def _panel(ax, scene: Scene, view: str, colours: dict[int, str], projections: dict):
    sx, sy, sz = scene.spacing_xyz
    axis, du = (1, sx) if view == "coronal" else (2, sy)
    which = 0 if view == "coronal" else 1
    mip = scene.image.max(axis=axis)
    height, width = mip.shape
    shown = ax.imshow(mip, cmap=scene.cmap, vmin=scene.window[0], vmax=scene.window[1], origin="lower",
                      extent=(0, width * du, 0, height * sz), interpolation="antialiased")
    halo = [withStroke(linewidth=2.2, foreground="white")]
    for name, region in scene.references:
        projected = region.any(axis=axis)
        if projected.any():
            _outline(ax, projected, du, sz, colors=[REFERENCE_COLOUR], linewidths=0.8, linestyles="dashed")
            rows, cols = np.nonzero(projected)
            ax.text(cols.min() * du, (rows.min() - 1) * sz, name, color=REFERENCE_COLOUR, fontsize=6.5,
                    style="italic", va="top", path_effects=halo, clip_on=True)
    for lesion in scene.lesions:
        if lesion.lesion_id not in projections:
            continue
        projected = projections[lesion.lesion_id][which]
        _outline(ax, projected, du, sz, colors=[colours[lesion.lesion_id]], linewidths=1.0)
        u, v = _label_position(projected, du, sz)
        ax.text(u, v, str(lesion.lesion_id), color=LABEL_COLOUR, fontsize=7, fontweight="bold", va="top",
                path_effects=halo, clip_on=True)
    ax.set_xlim(0, width * du)
    ax.set_ylim(0, height * sz)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"{view} MIP" + (" (R | L)" if view == "coronal" else " (A | P)"), fontsize=9)
    return shown


def _legend(ax, scene: Scene, colours: dict[int, str]) -> None:
    ax.axis("off")
    peak = "SUVmax" if scene.unit != "HU" else "HUmax"
    volume = "MTV mL" if scene.unit != "HU" else "vol mL"
    rows = [(f"{'id':>4} {peak:>8} {volume:>9}", "black")]
    for lesion in scene.lesions[:LEGEND_ROWS]:
        name = scene.names.get(lesion.lesion_id, "")
        rows.append((f"{lesion.lesion_id:>4} {lesion.suv_max:>8.2f} {lesion.mtv_ml:>9.2f}" + (f" {name[:14]}" if name
                     else ""), colours[lesion.lesion_id]))
    if len(scene.lesions) > LEGEND_ROWS:
        rows.append((f"... and {len(scene.lesions) - LEGEND_ROWS} more (ids on the outlines)", "black"))
    top = 1.0
    if not scene.lesions:
        # The banner stands here, beside the panels: drawn on a MIP it would hide the head.
        ax.text(0.0, 1.0, "NEGATIVE", color=NEGATIVE_COLOUR, fontsize=15, fontweight="bold", va="top",
                transform=ax.transAxes)
        top = 0.93
        rows.append(("no lesion voxels (negative scan)", NEGATIVE_COLOUR))
    mean = "SUVmean" if scene.unit != "HU" else "HUmean"
    for name, region in scene.references:
        inside = scene.image[region]
        figure = f"{mean} {float(inside.astype(np.float64).mean()):.2f}" if inside.size else "no voxel"
        rows.append((f"ref  {name}: {figure} (dashed)", REFERENCE_COLOUR))
    step = min(0.032, 0.98 / max(len(rows), 1))
    for i, (text, colour) in enumerate(rows):
        ax.text(0.0, top - i * step, text, color=colour, fontsize=7.5, family="monospace", va="top",
                transform=ax.transAxes, fontweight="bold" if i == 0 else "normal")


def _panel_map(ax, height_px: int) -> PanelMap:
    (x0, y0), (x1, y1) = ax.transData.transform([(0.0, 0.0), (1.0, 1.0)])
    return PanelMap(float(x0), float(height_px - y0), float(x1 - x0), float(-(y1 - y0)))


def _panels_only(picture: Image.Image, axes, height_px: int) -> Image.Image:
    """The thumbnail shows the two MIPs (what a reader scans a grid for), not the caption and the legend."""
    boxes = [ax.get_window_extent() for ax in axes]
    left, right = min(b.x0 for b in boxes), max(b.x1 for b in boxes)
    top, bottom = max(b.y1 for b in boxes), min(b.y0 for b in boxes)
    return picture.crop((max(0, int(left) - 2), max(0, int(height_px - top) - 18), min(picture.width, int(right) + 2),
                         min(picture.height, int(height_px - bottom) + 2)))


def panel_boxes(scene: Scene) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Figure-fraction rectangles of the coronal and sagittal panels at one mm-per-pixel scale: the largest scale at
    which both fit side by side in ``PANELS_AREA``, their tops aligned (so equal z is at equal height). Corners sit
    on whole pixels, so that outlines drawn without anti-aliasing land where the voxel edges are."""
    sx, sy, sz = scene.spacing_xyz
    nz, ny, nx = scene.image.shape
    left, bottom, width, height = PANELS_AREA
    fig_w, fig_h = FIGSIZE_IN[0] * DPI, FIGSIZE_IN[1] * DPI  # pixels
    coronal_mm, sagittal_mm, height_mm = nx * sx, ny * sy, nz * sz
    px_per_mm = min(height * fig_h / height_mm, (width - PANELS_GAP) * fig_w / (coronal_mm + sagittal_mm))
    top = round((bottom + height) * fig_h)
    low = top - height_mm * px_per_mm
    coronal_left = round(left * fig_w)
    sagittal_left = round(coronal_left + coronal_mm * px_per_mm + PANELS_GAP * fig_w)
    return ((coronal_left / fig_w, low / fig_h, coronal_mm * px_per_mm / fig_w, height_mm * px_per_mm / fig_h),
            (sagittal_left / fig_w, low / fig_h, sagittal_mm * px_per_mm / fig_w, height_mm * px_per_mm / fig_h))


def render(scene: Scene, key: str = "") -> Rendered:
    """Draw the scene once on an Agg canvas; encode the PNG (with ``key`` and the panel maps) and a JPEG thumbnail
    from the same pixels."""
    figure = Figure(figsize=FIGSIZE_IN, dpi=DPI, facecolor="white")
    canvas = FigureCanvasAgg(figure)
    colours = lesion_colours([lesion.lesion_id for lesion in scene.lesions])
    coronal_box, sagittal_box = panel_boxes(scene)
    coronal = figure.add_axes(coronal_box)
    sagittal = figure.add_axes(sagittal_box)
    projections = lesion_projections(scene.labels)
    shown = _panel(coronal, scene, "coronal", colours, projections)
    _panel(sagittal, scene, "sagittal", colours, projections)
    bar_left = sagittal_box[0] + sagittal_box[2] + 0.015  # beside the panels, whatever their width
    bar = figure.colorbar(shown, cax=figure.add_axes((bar_left, 0.16, 0.012, 0.72)), extend="both")
    bar.set_label("SUVbw (g/mL)" if scene.unit == "SUVbw" else scene.unit, fontsize=8)
    bar.ax.tick_params(labelsize=7)
    legend_left = bar_left + 0.06
    _legend(figure.add_axes((legend_left, 0.13, 0.99 - legend_left, 0.78)), scene, colours)
    figure.text(0.01, 0.965, scene.title, fontsize=11, fontweight="bold", va="top")
    figure.text(0.01, 0.015, scene.caption, fontsize=7.5, va="bottom", family="monospace")
    canvas.draw()
    width_px, height_px = canvas.get_width_height()
    pixels = np.asarray(canvas.buffer_rgba())[..., :3]
    panels = {"coronal": _panel_map(coronal, height_px), "sagittal": _panel_map(sagittal, height_px)}
    picture = Image.fromarray(np.ascontiguousarray(pixels))
    info = PngImagePlugin.PngInfo()
    info.add_text(KEY_CHUNK, key)
    info.add_text(PANELS_CHUNK, json.dumps({k: vars(v) for k, v in panels.items()}, sort_keys=True))
    png = io.BytesIO()
    picture.save(png, format="PNG", pnginfo=info, compress_level=3)  # 2x faster than 6, 11% larger
    thumb = _panels_only(picture, (coronal, sagittal), height_px)
    thumb = thumb.resize((THUMBNAIL_WIDTH, round(thumb.height * THUMBNAIL_WIDTH / thumb.width)), Image.LANCZOS)
    jpeg = io.BytesIO()
    thumb.save(jpeg, format="JPEG", quality=72, optimize=True)
    return Rendered(png.getvalue(), jpeg.getvalue(), panels, colours)


def read_panels(info: dict) -> dict[str, PanelMap]:
    """The panel maps stored in a PNG's text chunks (``PIL.Image.open(path).info``)."""
    return {k: PanelMap(**v) for k, v in json.loads(info[PANELS_CHUNK]).items()}
