"""SUVbw from DICOM PET headers or BIDS-PET sidecars, with every input recorded.

Why one module: PET features are meaningless unless the voxels are SUV, and every vendor stores them differently.
All the arithmetic lives here, follows the IBSI SUV manual (Vácha et al., ``suv_manual_extracted_text.txt`` in the
IBSI-SUV DRO set; sections cited as "Manual: <section>") and ends in one of two outcomes: a factor per slice that
turns the stored values (after RescaleSlope/Intercept) into SUVbw, together with the ``SuvInputs`` that a reviewer
needs to recompute it by hand; or a one-line ``ScanError(Stage.SUV, file, ...)`` naming the field and the fix.
Nothing falls back to a factor of 1.0 (MIRP's behaviour): Bq/mL must never meet an SUV bin width.

SUVbw = Ac [Bq/mL] x W [g] / D [Bq], D the administered dose decayed to the time the voxel values refer to.

No date leaves this module. Dates of service are identifiers (DICOM PS3.15 Annex E lists every DA/DT attribute),
so the recorded inputs keep what a reviewer needs to recompute the factor and nothing more: the injection and
reference times of day (``time_of_day``; "+1 day" when the reference falls on the next calendar day), the uptake
interval in seconds and the decay factor. Error messages name times of day too, and show a malformed date-time
with its digits masked (``masked``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from radiomx.errors import ScanError
from radiomx.inputs.radionuclides import ELEMENTS, looks_like_code, nuclide_of_meaning, radionuclide_of_code
from radiomx.vocabulary import Stage

if TYPE_CHECKING:  # pydicom is imported where DICOM values are parsed: NIfTI cohorts never load it
    from pydicom.dataset import Dataset

NAN = float("nan")

#: Physical half-lives in seconds (NNDC/DDEP), used when the header gives none and to check the one it gives.
#: F-18 and Ga-68 use the values of the IBSI-SUV DROs (6586.2 s, 4057.7 s).
HALF_LIVES_S: dict[str, float] = {
    "F-18": 6586.2, "Ga-68": 4057.7, "C-11": 1223.4, "N-13": 597.9, "O-15": 122.24, "Cu-64": 45721.1,
    "Zr-89": 282276.0, "Rb-82": 76.4, "I-124": 360806.0, "Ge-68": 23410080.0, "Sc-44": 14292.0, "Y-86": 53064.0,
}
#: Relative tolerance between a stated half-life and the radionuclide's (F-18 is stored as 6586 or 6588 s).
HALF_LIFE_RTOL = 0.01
#: Plausible body weight and administered dose; outside them the header is wrong, not the patient.
WEIGHT_RANGE_KG = (0.0, 300.0)
DOSE_RANGE_BQ = (1e6, 5e10)
#: RadionuclideTotalDose below this is taken as MBq (Manual: Radiopharmaceutical dose, Fig. 2: peaks at ~4e2
#: and ~4e8 for FDG); converted to Bq and recorded.
MBQ_BELOW = 1e5
#: An uptake period longer than this many half-lives leaves < 0.1 % of the activity: a date error, not a scan.
MAX_UPTAKE_HALF_LIVES = 10.0
#: Slices whose back-computed reference times differ by more than this are not one frame.
REFERENCE_SPREAD_S = 60.0


@dataclass(frozen=True)
class SuvInputs:
    """Everything the SUV factor was computed from; recorded as ``suv_<field>`` columns with every row.

    The set of fields is the same for every input kind (DICOM, BIDS sidecar, declared), so tables keep one
    schema: text fields are "" and numbers NaN when they did not enter the computation.
    """

    source: str  # "dicom", "bids-sidecar" or "declared"
    units: str  # the unit the stored values were in: BQML, GML, CM2ML, CNTS, Bq/mL, kBq/mL, SUVbw
    suv_type: str = ""  # SUVType (0054,1006) of GML/CM2ML images, back-converted to BW
    weight_kg: float = NAN
    weight_source: str = ""
    height_m: float = NAN
    sex: str = ""
    dose_bq: float = NAN
    dose_source: str = ""
    injection_time: str = ""
    reference_time: str = ""
    reference_time_source: str = ""
    #: Seconds from injection to the scan's start, whatever the values are decay-corrected to (an ADMIN image has
    #: an uptake too); NaN when the header does not say.
    uptake_s: float = NAN
    half_life_s: float = NAN
    half_life_source: str = ""
    radionuclide: str = ""
    decay_correction: str = ""  # START, ADMIN, NONE
    #: exp(-ln2 x (reference - injection) / half_life_s): the share of the dose left at the reference time (so
    #: exp(-ln2 x uptake_s / half_life_s) for START, 1 for ADMIN); NaN when no decay entered the factor (GML,
    #: declared SUV, Philips SUV scale factor).
    decay_factor: float = NAN
    vendor_factor: float = NAN
    vendor_factor_source: str = ""
    #: stored value x factor = SUVbw; NaN when it differs per slice (DecayCorrection NONE with per-slice times).
    factor: float = NAN

    def as_row(self) -> dict[str, str | float]:
        """The ``suv_<field>`` columns. Never the sex: a de-identification profile blanks Patient's Sex (PS3.15
        Basic Profile), and ``suv_factor`` with ``suv_suv_type`` already say what a GML/CM2ML back-conversion used."""
        return {f"suv_{name}": value for name, value in asdict(self).items() if name != "sex"}


def declared_inputs(reason: str) -> SuvInputs:
    """Images the user (or a sidecar) declares to be SUVbw already: nothing to compute, the claim is recorded."""
    return SuvInputs(source="declared", units="SUVbw", weight_source=reason, factor=1.0)


def time_of_day(moment: datetime, since: datetime | None = None) -> str:
    """``moment`` as its time of day (``09:30:00``, ``09:30:00.250000``), never its date; with ``since``, the days
    it falls after ``since``'s calendar day are added (``00:20:00 (+1 day)``: an uptake across midnight). The
    exact interval is ``uptake_s``."""
    text = moment.time().replace(tzinfo=None).isoformat()
    days = (moment.date() - since.date()).days if since is not None else 0
    return f"{text} ({days:+d} day{'s' if abs(days) != 1 else ''})" if days else text


def masked(value: str) -> str:
    """A header value as it is shaped, its digits shown as 9 (``'9999-99-99'``): enough to see why it does not
    parse, without writing the date it may hold into a table or a log."""
    return repr(re.sub(r"\d", "9", value))


#: A date at the start of a text that should hold a time of day (``2023-08-15T09:00:00``, ``20230815 090000``).
_LEADING_DATE = re.compile(r"^\s*\d{4}-?\d{2}-?\d{2}(?:[T\s]+|$)")


def without_date(text: str) -> str:
    """A time-of-day field (BIDS ``TimeZero`` is ``hh:mm:ss``) with a leading date removed, as some converters
    write a full date-time there."""
    return _LEADING_DATE.sub("", text).strip()


# --- plain arithmetic (Manual sections in brackets) -------------------------------------------------------------

def decay_factor(seconds: float, half_life_s: float) -> float:
    """Fraction of activity left after ``seconds``: exp(-ln2 t / T1/2) [Decay correction = START]."""
    return math.exp(-math.log(2.0) * seconds / half_life_s)


def frame_average_factor(duration_s: float, half_life_s: float) -> float:
    """lambda T / (1 - exp(-lambda T)): undoes the decay averaged over a frame of length T [Decay correction =
    NONE]; 1 for T -> 0."""
    lam_t = math.log(2.0) * duration_s / half_life_s
    return 1.0 if lam_t == 0 else lam_t / -math.expm1(-lam_t)


def average_count_time(duration_s: float, half_life_s: float) -> float:
    """T_ave = ln(lambda T / (1 - exp(-lambda T))) / lambda, the decay-weighted mid-frame time [Option A step 4]."""
    lam = math.log(2.0) / half_life_s
    return math.log(frame_average_factor(duration_s, half_life_s)) / lam


def bsa_dubois_m2(weight_kg: float, height_m: float) -> float:
    """Du Bois body surface area in m2: 0.007184 H[cm]^0.725 W[kg]^0.425 [Units = CM2ML]."""
    return 0.007184 * (height_m * 100.0) ** 0.725 * weight_kg**0.425


def _by_sex(male: float, female: float, sex: str) -> float:
    """Sex-specific formula; "O" (other) takes the mean of both, as the Manual suggests [Units = GML]."""
    return {"M": male, "F": female}.get(sex, (male + female) / 2.0)


def normaliser_kg(suv_type: str, weight_kg: float, height_m: float, sex: str) -> float:
    """The mass (kg) a GML image was normalised by, per SUVType (0054,1006) [Units = GML, after Sugawara]."""
    w, h_cm = weight_kg, height_m * 100.0
    if suv_type == "BW":
        return w
    if suv_type == "LBM":
        return _by_sex(1.10 * w - 120.0 * (w / h_cm) ** 2, 1.07 * w - 148.0 * (w / h_cm) ** 2, sex)
    if suv_type == "LBMJAMES128":
        return _by_sex(1.10 * w - 128.0 * (w / h_cm) ** 2, 1.07 * w - 148.0 * (w / h_cm) ** 2, sex)
    if suv_type == "LBMJANMA":
        bmi = w / height_m**2
        return _by_sex(9270.0 * w / (6680.0 + 216.0 * bmi), 9270.0 * w / (8780.0 + 244.0 * bmi), sex)
    if suv_type == "IBW":
        return _by_sex(48.0 + 1.06 * (h_cm - 152.0), 45.5 + 0.91 * (h_cm - 152.0), sex)
    raise ValueError(suv_type)


def suvbw_factor(weight_kg: float, dose_at_reference_bq: float) -> float:
    """Bq/mL -> SUVbw: W[g] / D[Bq] (g/mL, taking 1 mL of tissue as 1 g)."""
    return weight_kg * 1000.0 / dose_at_reference_bq


# --- radionuclide and half-life -----------------------------------------------------------------------------------

def normalise_radionuclide(text: str) -> str:
    """``F18``, ``18F``, ``^18^Fluorine``, ``Fluorine-18``, ``Ga68`` -> ``F-18``, ``Ga-68``; a CID 4020 code value
    (``C-111A1``, ``77004003``) -> its radionuclide (``radionuclides``); "" if unrecognised."""
    raw = (text or "").strip()
    if looks_like_code(raw):
        return radionuclide_of_code("", raw)[0]
    if nuclide_of_meaning(raw):  # CID 4020's own spelling, metastable states included: ^94m^Technetium
        return nuclide_of_meaning(raw)
    lowered = raw.lower()
    digits = re.findall(r"\d+", lowered)
    for name, symbol in ELEMENTS.items():
        if name in lowered and digits:
            return f"{symbol}-{digits[0]}"
    match = re.fullmatch(r"\^?(\d+)\^?\s*-?\s*([a-z]{1,2})|([a-z]{1,2})\s*-?\s*(\d+)", lowered)
    if match:
        mass, symbol = (match.group(1), match.group(2)) if match.group(1) else (match.group(4), match.group(3))
        candidate = f"{symbol.capitalize()}-{mass}"
        return candidate if candidate in HALF_LIVES_S else ""
    return ""


#: Where a scan's tracer (and so its expected radionuclide) came from, and the fix when the header names another
#: radionuclide: (what implies it, what to do). A cohort folder's scan takes its tracer from its folder.
TRACER_FOLDER = ("the tracer folder", "move the scan to the right tracer folder")


def resolve_half_life(stated_s: float | None, nuclide: str, expected_nuclide: str | None, path: str,
                      stated_field: str, nuclide_field: str,
                      expected_from: tuple[str, str] = TRACER_FOLDER) -> tuple[float, str, str]:
    """(half-life s, where it came from, radionuclide). The stated value must match the radionuclide named by
    the header, or else the one the scan's tracer implies (Manual: Radiopharmaceutical half-life)."""
    if nuclide and expected_nuclide and nuclide != expected_nuclide:
        implied_by, fix = expected_from
        raise ScanError(Stage.SUV, path, f"{nuclide_field} says {nuclide} but {implied_by} implies "
                                         f"{expected_nuclide}; {fix}")
    nuclide = nuclide or expected_nuclide or ""
    reference = HALF_LIVES_S.get(nuclide)
    if stated_s is None:
        if reference is None:
            raise ScanError(Stage.SUV, path, f"{stated_field} is missing and the radionuclide is unknown; SUVbw needs "
                                             "the half-life (add it, or name the radionuclide)")
        return reference, f"{nuclide} (radionuclide table)", nuclide
    if not math.isfinite(stated_s) or stated_s <= 0:
        raise ScanError(Stage.SUV, path, f"{stated_field} is {stated_s}; SUVbw needs a positive half-life in seconds")
    if reference is not None and abs(stated_s - reference) > HALF_LIFE_RTOL * reference:
        raise ScanError(Stage.SUV, path, f"{stated_field} is {stated_s:g} s but {nuclide} has {reference:g} s; "
                                         "fix the half-life or the radionuclide")
    return stated_s, stated_field, nuclide


# --- checks shared by DICOM and BIDS -------------------------------------------------------------------------------

def check_weight(value: float | None, path: str, field: str, fix: str) -> float:
    """Body weight in kg; > 1000 is taken as grams (Manual: Patient's weight). 0, missing or > 300 kg refuse."""
    if value is None or not math.isfinite(value):
        raise ScanError(Stage.SUV, path, f"{field} is missing; SUVbw needs it ({fix})")
    if value > 1000.0:
        value = value / 1000.0
    low, high = WEIGHT_RANGE_KG
    if value <= low:
        raise ScanError(Stage.SUV, path, f"{field} is {value:g}; SUVbw needs it ({fix})")
    if value > high:
        raise ScanError(Stage.SUV, path, f"{field} is {value:g}, implausible (> {high:g} kg); SUVbw needs the body "
                                         f"weight in kg ({fix})")
    return float(value)


def check_dose_bq(value: float | None, path: str, field: str, fix: str) -> tuple[float, str]:
    """Administered dose in Bq and a note on its unit; values below 1e5 are MBq (Manual: Radiopharmaceutical dose)."""
    if value is None or not math.isfinite(value):
        raise ScanError(Stage.SUV, path, f"{field} is missing; SUVbw needs the injected dose ({fix})")
    note = field
    if 0 < value < MBQ_BELOW:
        value, note = value * 1e6, f"{field} read as MBq"
    low, high = DOSE_RANGE_BQ
    if not low <= value <= high:
        raise ScanError(Stage.SUV, path, f"{field} is {value:g} Bq, outside the plausible {low / 1e6:g}-"
                                         f"{high / 1e6:g} MBq; SUVbw needs the injected dose ({fix})")
    return float(value), note


def check_uptake(injection: datetime, reference: datetime, half_life_s: float, path: str, injection_field: str,
                 reference_source: str) -> float:
    """Seconds from injection to the reference time; negative or absurdly long means a wrong date or time."""
    seconds = (reference - injection).total_seconds()
    if seconds < 0:
        raise ScanError(Stage.SUV, path, f"{injection_field} {time_of_day(injection)} is after the reference time "
                                         f"{time_of_day(reference, injection)} ({reference_source}); uptake time would "
                                         "be negative, fix the injection or scan time")
    if seconds > MAX_UPTAKE_HALF_LIVES * half_life_s:
        raise ScanError(Stage.SUV, path, f"uptake time {seconds / 3600:.1f} h from {injection_field} to "
                                         f"{reference_source} exceeds {MAX_UPTAKE_HALF_LIVES:g} half-lives; fix the "
                                         "dates")
    return seconds


# --- DICOM headers --------------------------------------------------------------------------------------------------

def header_text(ds: Dataset, tag: tuple[int, int] | str) -> str:
    """A (possibly private, possibly UN-encoded) attribute as stripped text; "" when absent or empty.

    Read raw (``get_item``), not through pydicom's value conversion: converting a malformed DA/DT warns with the
    value (``Invalid value for VR DT: '2023-08-15T09:00'``), through the logging and warnings machinery, onto
    stderr and into log shippers; the value may be a date. We check the shape ourselves and say it masked."""
    from pydicom.datadict import tag_for_keyword

    key = tag_for_keyword(tag) if isinstance(tag, str) else tag
    element = ds.get_item(key) if key is not None and key in ds else None
    if element is None or element.value is None:
        return ""
    value = element.value
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace").rstrip("\x00 ")
    return str(value).strip()


#: DICOM DT (PS3.5 6.2) down to the minute at least, as an injection or scan time needs: YYYYMMDDHHMM[SS[.F]][&ZZXX].
#: pydicom's DT parses a non-conformant ``2023-08-15T09:00`` as 2023-01-01 00:00 without an error.
_DICOM_DT = re.compile(r"^\d{12}(?:\d{2}(?:\.\d{1,6})?)?(?:[+-]\d{4})?$")


def _number(ds: Dataset, tag: tuple[int, int] | str, path: str, field: str) -> float | None:
    text = header_text(ds, tag)
    if not text:
        return None
    try:
        return float(text.split("\\")[0])
    except ValueError:
        raise ScanError(Stage.SUV, path, f"{field} is {text!r}, not a number; fix the header") from None


def _as_datetime(value: str, path: str, field: str) -> datetime | None:
    """DICOM DT (date and time) as a naive local datetime; a UTC offset is dropped (both times are local)."""
    if not value:
        return None
    from pydicom.valuerep import DT

    try:
        if not _DICOM_DT.match(value):
            raise ValueError(value)
        parsed = DT(value)
    except ValueError:
        raise ScanError(Stage.SUV, path, f"{field} is {masked(value)} (digits masked), not a DICOM date-time "
                                         "(YYYYMMDDHHMMSS); fix the header") from None
    return datetime.combine(parsed.date(), parsed.time().replace(tzinfo=None))


def _date_time(ds: Dataset, date_kw: str, time_kw: str, path: str, fields: str) -> datetime | None:
    """DA + TM pair (e.g. SeriesDate/SeriesTime) -> datetime; None when either is absent."""
    d, t = header_text(ds, date_kw), header_text(ds, time_kw)
    if not d or not t:
        return None
    from pydicom.valuerep import DA, TM

    try:
        return datetime.combine(date(*DA(d).timetuple()[:3]), TM(t).replace(tzinfo=None))
    except (ValueError, TypeError):
        raise ScanError(Stage.SUV, path, f"{fields} is {masked(d)} {masked(t)} (digits masked), not a DICOM date "
                                         "(YYYYMMDD) and time (HHMMSS); fix it") from None


def _time_only(ds: Dataset, keyword: str, path: str, field: str) -> time | None:
    text = header_text(ds, keyword)
    if not text:
        return None
    from pydicom.valuerep import TM

    try:
        return TM(text).replace(tzinfo=None)
    except ValueError:
        raise ScanError(Stage.SUV, path, f"{field} is {masked(text)} (digits masked), not a DICOM time (HHMMSS); fix "
                                         "the header") from None


def _radiopharmaceutical(ds: Dataset, path: str) -> Dataset:
    sequence = ds.get("RadiopharmaceuticalInformationSequence")
    if not sequence:
        raise ScanError(Stage.SUV, path, "Radiopharmaceutical Information Sequence (0054,0016) is missing; SUVbw needs "
                                         "the dose, injection time and half-life it holds (re-export with it)")
    return sequence[0]


def _injection(rp: Dataset, on_date: date, reference: datetime, path: str) -> tuple[datetime, str]:
    """Injection datetime [Radiopharmaceutical start time]: (0018,1078) DateTime if present, else (0018,1072) Time on
    the scan's date, one day earlier when that would fall after the scan (uptake across midnight)."""
    stamp = _as_datetime(header_text(rp, "RadiopharmaceuticalStartDateTime"), path,
                         "Radiopharmaceutical Start DateTime (0018,1078)")
    if stamp is not None:
        return stamp, "Radiopharmaceutical Start DateTime (0018,1078)"
    clock = _time_only(rp, "RadiopharmaceuticalStartTime", path, "Radiopharmaceutical Start Time (0018,1072)")
    if clock is None:
        raise ScanError(Stage.SUV, path,
                        "Radiopharmaceutical Start DateTime (0018,1078) and Start Time (0018,1072) are "
                        "missing; SUVbw needs the injection time (fix the header)")
    stamp = datetime.combine(on_date, clock)
    if stamp > reference:
        return stamp - timedelta(days=1), "Radiopharmaceutical Start Time (0018,1072), previous day (midnight)"
    return stamp, "Radiopharmaceutical Start Time (0018,1072) on the scan date"


def _acquisition(ds: Dataset, path: str) -> datetime | None:
    return (_date_time(ds, "AcquisitionDate", "AcquisitionTime", path, "Acquisition Date/Time (0008,0022/0032)")
            or _as_datetime(header_text(ds, "AcquisitionDateTime"), path, "Acquisition DateTime (0008,002A)"))


def _frame_ms(ds: Dataset, keyword: str, path: str, field: str) -> float:
    value = _number(ds, keyword, path, field)
    if value is None or value < 0:
        raise ScanError(Stage.SUV, path,
                        f"{field} is {'missing' if value is None else value}; needed to place the frame "
                        "in time (fix the header)")
    return value


def _required_acquisition(ds: Dataset, path: str, why: str) -> datetime:
    """A slice's acquisition datetime, or a ScanError saying why this decay-correction path needs it."""
    acq = _acquisition(ds, path)
    if acq is None:
        raise ScanError(Stage.SUV, path, f"Acquisition Date/Time (0008,0022/0032) is missing{why}")
    return acq


def _backcomputed_reference(headers: Sequence[Dataset], paths: Sequence[str], half_life_s: float) -> datetime:
    """t_ref = t_acq + T_ave - frame reference time, per slice [Decay correction = START, Option A step 4]."""
    refs = []
    for ds, path in zip(headers, paths, strict=True):
        acq = _required_acquisition(ds, path, " and Series Time is later than acquisition; cannot find the "
                                              "decay-correction reference time")
        duration = _frame_ms(ds, "ActualFrameDuration", path, "Actual Frame Duration (0018,1242)") / 1000.0
        offset = _frame_ms(ds, "FrameReferenceTime", path, "Frame Reference Time (0054,1300)") / 1000.0
        refs.append(acq + timedelta(seconds=average_count_time(duration, half_life_s) - offset))
    if (max(refs) - min(refs)).total_seconds() > REFERENCE_SPREAD_S:
        raise ScanError(Stage.SUV, paths[0], "slices back-compute to decay-correction reference times "
                                             f"{time_of_day(min(refs))} to {time_of_day(max(refs), min(refs))}; mixed "
                                             "frames in one series (keep one frame per folder)")
    return min(refs) + (max(refs) - min(refs)) / 2


def _stated_start(headers: Sequence[Dataset], paths: Sequence[str]) -> tuple[datetime, str] | None:
    """The scan start a header states, in the Manual's (QIBA) order: GE's private scan datetime, else the Series
    Date/Time when it is not after the first acquisition (post-processing rewrites it); None otherwise."""
    first, path = headers[0], paths[0]
    if "GE" in header_text(first, "Manufacturer").upper().split():
        ge = _as_datetime(header_text(first, (0x0009, 0x100D)), path, "GE private PET scan datetime (0009,100D)")
        if ge is not None:
            return ge, "GE private PET scan datetime (0009,100D)"
    series = _date_time(first, "SeriesDate", "SeriesTime", path, "Series Date/Time (0008,0021/0031)")
    acquisitions = [a for a in (_acquisition(ds, p) for ds, p in zip(headers, paths, strict=True)) if a is not None]
    if series is not None and (not acquisitions or series <= min(acquisitions)):
        return series, "Series Date/Time (0008,0021/0031)"
    return None


def _start_reference(headers: Sequence[Dataset], paths: Sequence[str], half_life_s: float) -> tuple[datetime, str]:
    """Reference time of DecayCorrection START, in the Manual's (QIBA) order of priority."""
    return _stated_start(headers, paths) or (
        _backcomputed_reference(headers, paths, half_life_s),
        "back-computed: Acquisition Time + T_ave - Frame Reference Time (0008,0032/0018,1242/0054,1300)")


def _admin_uptake(headers: Sequence[Dataset], paths: Sequence[str], rp: Dataset, half_life_s: float) -> dict[str, Any]:
    """DecayCorrection ADMIN: the values refer to the injection, so no decay enters the factor, but the uptake
    (injection to scan start: the stated start, else the first acquisition) is recorded as for every other mode.
    It is information only: a header without those times records NaN rather than refusing a scan whose SUV needs
    none of them."""
    try:
        acquisitions = [a for a in (_acquisition(ds, p) for ds, p in zip(headers, paths, strict=True)) if a]
        start = _stated_start(headers, paths) or (
            (min(acquisitions), "Acquisition Date/Time (0008,0022/0032)") if acquisitions else None)
        if start is None:
            return {"uptake_s": NAN}
        injection, injection_source = _injection(rp, start[0].date(), start[0], paths[0])
        uptake = check_uptake(injection, start[0], half_life_s, paths[0], injection_source, start[1])
    except ScanError:
        return {"uptake_s": NAN}
    return {"uptake_s": uptake, "injection_time": time_of_day(injection)}


def _dicom_weight(ds: Dataset, path: str) -> float:
    return check_weight(_number(ds, "PatientWeight", path, "Patient Weight (0010,1030)"), path,
                        "Patient Weight (0010,1030)", "fix the header, or convert to NIfTI with body_weight in "
                                                      "participants.tsv")


def _export_tracer(rp: Dataset) -> tuple[str, str]:
    """In a DICOM export the tracer comes from the header's radiopharmaceutical, or from ``--default-tracer`` when
    the header names none (``radiomx.discover.dicom_export``): there is no tracer folder to move a scan to."""
    if header_text(rp, "Radiopharmaceutical") or rp.get("RadiopharmaceuticalCodeSequence"):
        return ("the header's Radiopharmaceutical (0018,0031/0054,0304)",
                "the header contradicts itself: correct its radionuclide or its radiopharmaceutical in the export")
    return ("--default-tracer (the header names no radiopharmaceutical)",
            "run with the --default-tracer of that radionuclide")


def _confirms(nuclide: str, stated_s: float | None) -> bool:
    """Whether a stated half-life is ``nuclide``'s (within ``HALF_LIFE_RTOL``)."""
    reference = HALF_LIVES_S.get(nuclide)
    return stated_s is not None and reference is not None and abs(stated_s - reference) <= HALF_LIFE_RTOL * reference


def _code_nuclide(item: Dataset, stated_s: float | None) -> tuple[str, str, str]:
    """(radionuclide, how the header named it, a note for ``half_life_source``) of one Radionuclide Code Sequence
    item: its code through DICOM CID 4020 (``radionuclides``), else its Code Meaning as text.

    Real exports contradict themselves: the IBSI-SUV Ga-68 DRO writes SRT ``C-131A1`` (^66^Gallium in CID 4020)
    with the Code Meaning ``^68^Gallium`` and Ga-68's half-life. The code wins, unless the stated half-life is the
    Code Meaning's radionuclide's and not the code's: then physics settles it, and the note records the conflict."""
    scheme, value = header_text(item, "CodingSchemeDesignator"), header_text(item, "CodeValue")
    meaning = header_text(item, "CodeMeaning")
    by_code, cid_meaning = radionuclide_of_code(scheme, value) if value else ("", "")
    by_meaning = normalise_radionuclide(meaning)
    if not by_code:
        return by_meaning, f" Code Meaning {meaning!r}" if by_meaning else "", ""
    code = f"code {f'{scheme} {value}'.strip()} ({cid_meaning} in DICOM CID 4020"
    if not by_meaning or by_meaning == by_code:
        return by_code, f" {code})", ""
    if _confirms(by_meaning, stated_s) and not _confirms(by_code, stated_s):
        return by_meaning, f" Code Meaning {meaning!r}", (f"the Code Meaning {meaning!r} and the half-life name "
                                                          f"{by_meaning}, not the {code})")
    return by_code, f" {code}, though its Code Meaning reads {meaning!r})", ""


def _dicom_half_life(rp: Dataset, path: str, expected: str | None, in_export: bool) -> tuple[float, str, str]:
    stated = _number(rp, "RadionuclideHalfLife", path, "Radionuclide Half Life (0018,1075)")
    nuclide, named, note = "", "", ""
    for item in rp.get("RadionuclideCodeSequence") or []:
        nuclide, named, note = _code_nuclide(item, stated)
        if nuclide:
            break
    half_life, source, nuclide = resolve_half_life(
        stated, nuclide, expected, path, "Radionuclide Half Life (0018,1075)",
        f"Radionuclide Code Sequence (0054,0300){named}", _export_tracer(rp) if in_export else TRACER_FOLDER)
    return half_life, f"{source}; {note}" if note else source, nuclide


def _gml_inputs(first: Dataset, path: str, units: str) -> SuvInputs:
    """GML (and CM2ML) images are already normalised; back-convert to BW [Units = GML, Units = CM2ML]. The recorded
    units, suv_type and factor let ``radiomx.inputs.lbm`` recognise an image stored as SUL (LBMJANMA, LBMJAMES128):
    its SUL is the inverse of this factor, so it is never normalised twice."""
    suv_type = header_text(first, "SUVType").upper() or ("BSA" if units == "CM2ML" else "BW")
    if units == "CM2ML" and suv_type != "BSA":
        raise ScanError(Stage.SUV, path, f"Units (0054,1001) CM2ML with SUV Type (0054,1006) {suv_type}; expected BSA")
    if units == "GML" and suv_type not in ("BW", "LBM", "LBMJAMES128", "LBMJANMA", "IBW"):
        raise ScanError(Stage.SUV, path, f"SUV Type (0054,1006) {suv_type!r} is unknown; cannot back-convert to SUVbw")
    if suv_type == "BW":
        return SuvInputs("dicom", units, suv_type, factor=1.0)
    weight = _dicom_weight(first, path)
    height = _number(first, "PatientSize", path, "Patient Size (0010,1020)")
    if height is None or not 0.3 <= height <= 2.6:
        raise ScanError(Stage.SUV, path, f"Patient Size (0010,1020) is {height if height is not None else 'missing'}; "
                                         f"back-converting {suv_type} to SUVbw needs the height in m (fix the header)")
    sex = header_text(first, "PatientSex").upper()
    if suv_type != "BSA" and sex not in ("M", "F", "O"):
        raise ScanError(Stage.SUV, path, f"Patient's Sex (0010,0040) is {sex or 'missing'}; back-converting {suv_type} "
                                         "to SUVbw needs M, F or O (fix the header)")
    if suv_type == "BSA":
        # SUVbsa [cm2/mL] = Ac BSA[cm2] / D, so SUVbw = SUVbsa x W[g] / BSA[cm2].
        factor = weight * 1000.0 / (bsa_dubois_m2(weight, height) * 1e4)
    else:
        factor = weight / normaliser_kg(suv_type, weight, height, sex)
    return SuvInputs("dicom", units, suv_type, weight_kg=weight, weight_source="Patient Weight (0010,1030)",
                     height_m=height, sex=sex if suv_type != "BSA" else "", factor=factor)


def _philips_factor(ds: Dataset, path: str) -> tuple[float, str] | None:
    """Philips CNTS scale factors [Units = CNTS]: activity concentration (7053,1009) -> Bq/mL, preferred because
    our own decay and weight handling then applies and is recorded; else SUV (7053,1000) -> SUVbw directly.
    A factor of 0.0 means "cannot convert" (Philips conformance statement)."""
    for tag, name in (((0x7053, 0x1009), "Philips activity concentration scale factor (7053,1009)"),
                      ((0x7053, 0x1000), "Philips SUV scale factor (7053,1000)")):
        value = _number(ds, tag, path, name)
        if value:
            return value, name
    return None


def _dose(rp: Dataset, path: str) -> tuple[float, str]:
    return check_dose_bq(_number(rp, "RadionuclideTotalDose", path, "Radionuclide Total Dose (0018,1074)"), path,
                         "Radionuclide Total Dose (0018,1074)", "fix the header")


def dicom_suv(headers: Sequence[Dataset], paths: Sequence[str], expected_nuclide: str | None,
              in_export: bool = False) -> tuple[np.ndarray, SuvInputs]:
    """Per-slice factors (stored value after RescaleSlope/Intercept x factor = SUVbw) and their inputs.

    ``headers`` are the slices in image z order; ``paths`` name them in errors. ``expected_nuclide`` comes from
    the scan's tracer (``F-18`` for FDG) and is checked against the header; the tracer came from the tracer folder,
    or, ``in_export``, from the header's radiopharmaceutical or ``--default-tracer`` (error messages say which).
    """
    first, path = headers[0], paths[0]
    units = header_text(first, "Units").upper()
    if units in ("GML", "CM2ML"):
        inputs = _gml_inputs(first, path, units)
        return np.full(len(headers), inputs.factor), inputs
    vendor: list[float] = []
    vendor_source = ""
    if units == "CNTS":
        found = [_philips_factor(ds, p) for ds, p in zip(headers, paths, strict=True)]
        if any(f is None for f in found):
            raise ScanError(Stage.SUV, path, "Units (0054,1001) is CNTS without a Philips scale factor (7053,1000)/"
                                             "(7053,1009); counts cannot be converted to SUVbw (re-export in BQML)")
        vendor, vendor_source = [f[0] for f in found], found[0][1]
        if "SUV scale" in vendor_source:
            factors = np.asarray(vendor, dtype=np.float64)
            return factors, SuvInputs("dicom", units, vendor_factor=float(factors[0]),
                                      vendor_factor_source=vendor_source,
                                      factor=float(factors[0]) if np.ptp(factors) == 0 else NAN)
    elif units != "BQML":
        raise ScanError(Stage.SUV, path,
                        f"Units (0054,1001) is {units or 'missing'}; radiomx converts BQML, GML, CM2ML "
                        "and Philips CNTS to SUVbw (re-export the series in BQML)")
    factors, inputs = _bqml_factors(headers, paths, expected_nuclide, in_export)
    if vendor:
        factors = factors * np.asarray(vendor)
        inputs = replace(inputs, units=units, vendor_factor=vendor[0], vendor_factor_source=vendor_source,
                         factor=inputs.factor * vendor[0] if np.ptp(vendor) == 0 else NAN)
    return factors, inputs


def _bqml_factors(headers: Sequence[Dataset], paths: Sequence[str], expected_nuclide: str | None,
                  in_export: bool) -> tuple[np.ndarray, SuvInputs]:
    """Bq/mL -> SUVbw per slice, by DecayCorrection (0054,1102) [Radiopharmaceutical dose]."""
    first, path = headers[0], paths[0]
    rp = _radiopharmaceutical(first, path)
    weight = _dicom_weight(first, path)
    dose, dose_source = _dose(rp, path)
    half_life, half_life_source, nuclide = _dicom_half_life(rp, path, expected_nuclide, in_export)
    mode = header_text(first, "DecayCorrection").upper()
    common = {"source": "dicom", "units": "BQML", "weight_kg": weight, "weight_source": "Patient Weight (0010,1030)",
              "dose_bq": dose, "dose_source": dose_source, "half_life_s": half_life,
              "half_life_source": half_life_source, "radionuclide": nuclide, "decay_correction": mode}
    if mode == "ADMIN":
        # Images are decay-corrected to the injection: the administered dose is the dose at the reference time.
        return np.full(len(headers), suvbw_factor(weight, dose)), SuvInputs(
            **common, reference_time_source="ADMIN: injection time", decay_factor=1.0,
            factor=suvbw_factor(weight, dose), **_admin_uptake(headers, paths, rp, half_life))
    if mode == "START":
        reference, reference_source = _start_reference(headers, paths, half_life)
        injection, injection_source = _injection(rp, reference.date(), reference, path)
        uptake = check_uptake(injection, reference, half_life, path, injection_source, reference_source)
        decay = decay_factor(uptake, half_life)
        factor = suvbw_factor(weight, dose * decay)
        return np.full(len(headers), factor), SuvInputs(
            **common, injection_time=time_of_day(injection), reference_time=time_of_day(reference, injection),
            reference_time_source=reference_source, uptake_s=uptake, decay_factor=decay, factor=factor)
    if mode == "NONE":
        return _undecayed_factors(headers, paths, rp, weight, dose, half_life, common)
    raise ScanError(Stage.SUV, path, f"Decay Correction (0054,1102) is {mode or 'missing'}; expected START, ADMIN or "
                                     "NONE (fix the header)")


def _undecayed_factors(headers: Sequence[Dataset], paths: Sequence[str], rp: Dataset, weight: float, dose: float,
                       half_life: float, common: dict[str, Any]) -> tuple[np.ndarray, SuvInputs]:
    """DecayCorrection NONE: each slice is corrected back to the injection from its own acquisition time and frame
    duration, SUVbw = m P W / D x lambda T / (1 - exp(-lambda T)) x exp(lambda (t_acq - t_adm))."""
    acquisitions = []
    for ds, p in zip(headers, paths, strict=True):
        acquisitions.append(_required_acquisition(ds, p, "; Decay Correction NONE needs each slice's acquisition "
                                                         "time (fix the header)"))
    earliest = min(acquisitions)
    injection, injection_source = _injection(rp, earliest.date(), earliest, paths[0])
    reference_source = "NONE: each slice's Acquisition Time (0008,0032) + Actual Frame Duration (0018,1242)"
    check_uptake(injection, earliest, half_life, paths[0], injection_source, reference_source)
    factors = []
    for ds, p, acq in zip(headers, paths, acquisitions, strict=True):
        duration = _frame_ms(ds, "ActualFrameDuration", p, "Actual Frame Duration (0018,1242)") / 1000.0
        elapsed = (acq - injection).total_seconds()
        factors.append(suvbw_factor(weight, dose) * frame_average_factor(duration, half_life)
                       / decay_factor(elapsed, half_life))
    array = np.asarray(factors)
    uptake = (earliest - injection).total_seconds()
    return array, SuvInputs(**common, injection_time=time_of_day(injection),
                            reference_time=time_of_day(earliest, injection), reference_time_source=reference_source,
                            uptake_s=uptake, decay_factor=decay_factor(uptake, half_life),
                            factor=float(array[0]) if np.ptp(array) == 0 else NAN)


# --- BIDS-PET sidecars ----------------------------------------------------------------------------------------------

#: Sidecar ``Units`` values that mean Bq/mL (with their multiplier) or already-SUVbw.
ACTIVITY_UNITS = {"bq/ml": 1.0, "kbq/ml": 1e3, "mbq/ml": 1e6, "bq/cc": 1.0, "kbq/cc": 1e3}
SUV_UNITS = {"suv", "suvbw", "g/ml"}
#: ``InjectedRadioactivityUnits`` -> Bq.
DOSE_UNITS = {"bq": 1.0, "kbq": 1e3, "mbq": 1e6, "gbq": 1e9, "mci": 3.7e7, "uci": 3.7e4, "µci": 3.7e4}
#: BIDS spells it ``InjectedRadioactivityUnits``; some converters wrote ``InjectedRadioActivityUnits``.
DOSE_UNIT_KEYS = ("InjectedRadioactivityUnits", "InjectedRadioActivityUnits")


def _sidecar_number(sidecar: dict[str, Any], key: str, path: str, fix: str, first: bool = False) -> float:
    value = sidecar.get(key)
    if first and isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        state = "missing" if value is None else f"{value!r}, not a number"
        raise ScanError(Stage.SUV, path, f"{key} is {state}; SUVbw needs it ({fix})")
    return float(value)


def sidecar_units(sidecar: dict[str, Any], path: str) -> str:
    """``"suv"`` when the sidecar declares SUV images, else ``"activity"``; anything else refuses."""
    units = str(sidecar.get("Units", "")).strip()
    if units.lower() in SUV_UNITS:
        return "suv"
    if units.lower() in ACTIVITY_UNITS:
        return "activity"
    raise ScanError(Stage.SUV, path, f"Units is {units or 'missing'}; radiomx converts Bq/mL (or kBq/mL) to SUVbw or "
                                     "takes SUV as is (set Units in the sidecar)")


def _sidecar_dose(sidecar: dict[str, Any], path: str) -> tuple[float, str]:
    amount = _sidecar_number(sidecar, "InjectedRadioactivity", path, "add it to the sidecar")
    key = next((k for k in DOSE_UNIT_KEYS if k in sidecar), DOSE_UNIT_KEYS[0])
    unit = str(sidecar.get(key, "")).strip()
    scale = DOSE_UNITS.get(unit.lower())
    if scale is None:
        raise ScanError(Stage.SUV, path, f"{key} is {unit or 'missing'}; SUVbw needs the dose unit "
                                         f"({', '.join(u for u in DOSE_UNITS if u != 'µci')})")
    bq = amount * scale
    low, high = DOSE_RANGE_BQ
    if not low <= bq <= high:
        raise ScanError(Stage.SUV, path,
                        f"InjectedRadioactivity is {amount:g} {unit} = {bq:g} Bq, outside the plausible "
                        f"{low / 1e6:g}-{high / 1e6:g} MBq; fix the dose or its unit")
    return bq, f"InjectedRadioactivity {amount:g} {unit}"


def sidecar_suv(sidecar: dict[str, Any], path: str, weight_kg: float | None, weight_source: str,
                expected_nuclide: str | None) -> SuvInputs:
    """Bq/mL NIfTI + BIDS-PET sidecar -> one SUVbw factor. Times are seconds relative to the sidecar's TimeZero, so
    an uptake across midnight needs no date. Body weight comes from participants.tsv/sessions.tsv."""
    if sidecar_units(sidecar, path) == "suv":
        return declared_inputs(f"sidecar Units {sidecar.get('Units')}")
    scale = ACTIVITY_UNITS[str(sidecar["Units"]).strip().lower()]
    weight = check_weight(weight_kg, weight_source or path, "body_weight",
                          "add body_weight to participants.tsv or sessions.tsv")
    dose, dose_source = _sidecar_dose(sidecar, path)
    stated = sidecar.get("RadionuclideHalfLife")
    half_life, half_life_source, nuclide = resolve_half_life(
        float(stated) if isinstance(stated, int | float) else None,
        normalise_radionuclide(str(sidecar.get("TracerRadionuclide", ""))), expected_nuclide, path,
        "RadionuclideHalfLife", "TracerRadionuclide")
    injection = _sidecar_number(sidecar, "InjectionStart", path, "seconds from TimeZero; add it to the sidecar")
    corrected = sidecar.get("ImageDecayCorrected")
    if not isinstance(corrected, bool):
        raise ScanError(Stage.SUV, path, f"ImageDecayCorrected is {corrected!r}; SUVbw needs true or false (add it)")
    common = {"source": "bids-sidecar", "units": str(sidecar["Units"]), "weight_kg": weight,
              "weight_source": weight_source, "dose_bq": dose, "dose_source": dose_source, "half_life_s": half_life,
              "half_life_source": half_life_source, "radionuclide": nuclide,
              "injection_time": f"InjectionStart {injection:g} s after TimeZero "
                                f"{without_date(str(sidecar.get('TimeZero', '')))}".strip()}
    if corrected:
        key = "ImageDecayCorrectionTime" if "ImageDecayCorrectionTime" in sidecar else "ScanStart"
        reference = _sidecar_number(sidecar, key, path, "seconds from TimeZero; add it to the sidecar")
        decay = decay_factor(_sidecar_uptake(reference - injection, half_life, path, key), half_life)
        factor = scale * suvbw_factor(weight, dose * decay)
        # The uptake is injection -> scan start whatever the images are decay-corrected to (a sidecar corrected to
        # the injection has ImageDecayCorrectionTime = InjectionStart: no decay, yet an uptake of an hour).
        start = sidecar.get("ScanStart")
        uptake = (_sidecar_uptake(start - injection, half_life, path, "ScanStart")
                  if isinstance(start, int | float) and not isinstance(start, bool) else NAN)
        return SuvInputs(**common, decay_correction="START" if key == "ScanStart" else "ImageDecayCorrectionTime",
                         reference_time=f"{key} {reference:g} s", reference_time_source=key, uptake_s=uptake,
                         decay_factor=decay, factor=factor)
    start = _sidecar_number(sidecar, "ScanStart", path, "seconds from TimeZero; add it to the sidecar")
    start += _sidecar_number(sidecar, "FrameTimesStart", path, "add it to the sidecar", first=True)
    duration = _sidecar_number(sidecar, "FrameDuration", path, "add it to the sidecar", first=True)
    uptake = _sidecar_uptake(start - injection, half_life, path, "ScanStart + FrameTimesStart")
    factor = scale * suvbw_factor(weight, dose) * frame_average_factor(duration, half_life) / decay_factor(
        uptake, half_life)
    return SuvInputs(**common, decay_correction="NONE", reference_time=f"frame start {start:g} s, {duration:g} s",
                     reference_time_source="ScanStart + FrameTimesStart, FrameDuration", uptake_s=uptake,
                     decay_factor=decay_factor(uptake, half_life), factor=factor)


def _sidecar_uptake(seconds: float, half_life_s: float, path: str, reference_key: str) -> float:
    if seconds < 0:
        raise ScanError(Stage.SUV, path,
                        f"{reference_key} is {-seconds:g} s before InjectionStart; uptake time would be "
                        "negative (fix the times in the sidecar)")
    if seconds > MAX_UPTAKE_HALF_LIVES * half_life_s:
        raise ScanError(Stage.SUV, path, f"uptake time {seconds / 3600:.1f} h exceeds {MAX_UPTAKE_HALF_LIVES:g} "
                                         "half-lives; fix the times in the sidecar")
    return seconds
