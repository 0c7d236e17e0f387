"""Decide, per discovered scan, whether it must be computed: new, changed, retry, or unchanged.

Why a separate stage: ``--dry-run`` prints exactly this, and the nightly no-change rerun must finish in seconds,
so unchanged scans are recognised by size + mtime alone; content is hashed only for files whose stat moved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from radiomx.fingerprint import content_sha256, stat_signature
from radiomx.options import LesionOptions
from radiomx.params.paramset import ParamSet
from radiomx.records import CohortPaths, Layout, Scan, ScanKey
from radiomx.run.tasks import ScanTask, work_key
from radiomx.vocabulary import DONE_STATUSES, PlanStatus


@dataclass
class PlanItem:
    scan: Scan
    status: PlanStatus
    reason: str = ""
    task: ScanTask | None = None
    #: For unchanged scans whose stat moved (a touch): the refreshed state row, so the next run is fast again.
    refreshed_state: dict | None = None


@dataclass
class Plan:
    items: list[PlanItem] = field(default_factory=list)
    #: Scans stored in OUT that the cohort no longer has: their rows are kept unless ``--prune`` drops them.
    vanished: list[ScanKey] = field(default_factory=list)

    def count(self, status: PlanStatus) -> int:
        return sum(1 for i in self.items if i.status == status)

    def counts(self) -> dict[str, int]:
        """Scans per status, every status present (0 when none), and the stored scans that vanished."""
        return {**{s.value: self.count(s) for s in PlanStatus}, "vanished": len(self.vanished)}

    @property
    def to_compute(self) -> list[PlanItem]:
        return [i for i in self.items if i.status.computes]


def _hash_if_moved(path: Path | tuple[Path, ...] | None, stat: str, old_stat: str, old_sha: str) -> str:
    return old_sha if stat == old_stat and old_sha else content_sha256(path)


def make_plan(scans: list[Scan], state: dict[ScanKey, dict], params: dict[str, ParamSet], cohort: Path,
              layout: Layout, lesion_options: LesionOptions, force: bool,
              in_cohort: set[ScanKey] | None = None) -> Plan:
    """``scans``: those to plan (a ``--scans`` selection, or the whole cohort); ``in_cohort``: every scan the cohort
    has (default: ``scans``). A stored scan has vanished only when the cohort lacks it, not when a selection left
    it out: ``--scans P001 --prune`` must not drop every other patient."""
    plan = Plan()
    seen = set()
    for scan in scans:
        seen.add(scan.key)
        if scan.problem is not None:
            plan.items.append(PlanItem(scan, PlanStatus.INVALID, CohortPaths(cohort).text(scan.problem[2])))
            continue
        p = params[scan.key.tracer]
        old = state.get(scan.key)
        if old is None or force:
            task = ScanTask(scan, cohort, layout, p, lesion_options)
            plan.items.append(PlanItem(scan, PlanStatus.NEW if old is None else PlanStatus.CHANGED,
                                       "forced" if old else "", task))
            continue
        try:
            image_stat, mask_stat = stat_signature(scan.image_source), stat_signature(scan.mask)
            image_sha = _hash_if_moved(scan.image_source, image_stat, old["image_stat"], old["image_sha256"])
            mask_sha = _hash_if_moved(scan.mask, mask_stat, old["mask_stat"], old["mask_sha256"])
            organs_path = scan.organs.path if scan.organs is not None else None
            organs_stat = stat_signature(organs_path)
            organs_sha = _hash_if_moved(organs_path, organs_stat, old.get("organs_stat") or "",
                                        old.get("organs_sha256") or "")
        except OSError:  # unreadable now: let the worker produce the precise failure
            task = ScanTask(scan, cohort, layout, p, lesion_options)
            plan.items.append(PlanItem(scan, PlanStatus.CHANGED, "input unreadable", task))
            continue
        key = work_key(scan, image_sha, mask_sha, p, lesion_options, layout.pet_units, organs_sha)
        task = ScanTask(scan, cohort, layout, p, lesion_options, image_sha, mask_sha, organs_sha)
        if old["status"] not in DONE_STATUSES:
            plan.items.append(PlanItem(scan, PlanStatus.RETRY, f"{old['status']} last time", task))
        elif key != old["work_key"]:
            reason = ("image" if image_sha != old["image_sha256"] else "mask" if mask_sha != old["mask_sha256"]
                      else "parameters" if p.sha256 != old["params_sha256"]
                      else "organs" if organs_sha != (old.get("organs_sha256") or "") else "options or radiomx version")
            plan.items.append(PlanItem(scan, PlanStatus.CHANGED, f"{reason} changed", task))
        else:
            refreshed = None
            if (image_stat, mask_stat, organs_stat) != (old["image_stat"], old["mask_stat"],
                                                        old.get("organs_stat") or ""):
                refreshed = {**old, "image_stat": image_stat, "mask_stat": mask_stat, "organs_stat": organs_stat}
            plan.items.append(PlanItem(scan, PlanStatus.UNCHANGED, "", None, refreshed))
    plan.vanished = sorted(k for k in state if k not in (seen if in_cohort is None else in_cohort | seen))
    return plan
