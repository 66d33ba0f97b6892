"""Accuracy and area from a confusion matrix of sample counts.

Rows are map classes, columns reference classes. Two families of estimates:

- `sample_accuracy`: the counts taken as a simple random sample (every pixel of a reference
  raster, or points drawn without regard to the map). Proportions get Wilson score intervals,
  which stay inside [0, 1] near 100 % accuracy; kappa gets the large-sample variance of Fleiss,
  Cohen and Everitt (1969); the IoU is a proportion of the units in the union of map and
  reference (TP of TP+FP+FN), so it gets a Wilson interval too, and F1 = 2 IoU / (1 + IoU)
  carries it over.
- `area_adjusted`: a stratified random sample whose strata are the map classes, weighted by the
  mapped area of each class: the estimators of Olofsson et al. (2013, 2014) for the error matrix
  in area proportions, overall, user's and producer's accuracy and the area of each class, with
  standard errors and normal confidence intervals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np


def z_score(confidence: float) -> float:
    """1.96 for 95 %."""
    return NormalDist().inv_cdf(0.5 + confidence / 2)


@dataclass(frozen=True)
class Matrix:
    """Counts of (map class, reference class) pairs over `classes`, rows map, columns
    reference."""

    classes: tuple[int, ...]
    counts: np.ndarray  # int64, len(classes) x len(classes)

    @classmethod
    def from_pairs(
        cls, pairs: Mapping[tuple[int, int], int], classes: Sequence[int] = ()
    ) -> Matrix:
        codes = sorted({*classes, *(m for m, _ in pairs), *(r for _, r in pairs)})
        index = {c: k for k, c in enumerate(codes)}
        counts = np.zeros((len(codes), len(codes)), np.int64)
        for (m, r), n in pairs.items():
            counts[index[m], index[r]] += n
        return cls(tuple(codes), counts)

    @property
    def total(self) -> int:
        return int(self.counts.sum())


def wilson(successes: float, n: float, z: float) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion; None without trials."""
    if n <= 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def _unit(value: float, half: float) -> tuple[float, float]:
    """A normal interval of a proportion, cut to [0, 1]."""
    return max(0.0, float(value - half)), min(1.0, float(value + half))


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def kappa(counts: np.ndarray) -> tuple[float | None, float | None]:
    """Cohen's kappa and its large-sample standard error (Fleiss, Cohen & Everitt 1969, as in
    Congalton & Green)."""
    n = counts.sum()
    if n == 0:
        return None, None
    p = counts / n
    rows, cols = p.sum(axis=1), p.sum(axis=0)
    t1 = np.trace(p)
    t2 = float((rows * cols).sum())
    if t2 >= 1:
        return None, None  # one class in map and reference: kappa is undefined
    t3 = float((np.diag(p) * (rows + cols)).sum())
    t4 = float((p * (rows[None, :] + cols[:, None]) ** 2).sum())
    value = (t1 - t2) / (1 - t2)
    variance = (
        t1 * (1 - t1) / (1 - t2) ** 2
        + 2 * (1 - t1) * (2 * t1 * t2 - t3) / (1 - t2) ** 3
        + (1 - t1) ** 2 * (t4 - 4 * t2**2) / (1 - t2) ** 4
    ) / n
    return float(value), float(math.sqrt(max(variance, 0.0)))


def sample_accuracy(matrix: Matrix, confidence: float = 0.95) -> dict:
    """Overall accuracy, kappa and per-class user's/producer's accuracy, F1 and IoU from the
    counts as a simple random sample, with confidence intervals."""
    z = z_score(confidence)
    counts = matrix.counts
    n = counts.sum()
    diag = np.diag(counts)
    rows, cols = counts.sum(axis=1), counts.sum(axis=0)
    value, se = kappa(counts)
    classes = {}
    for k, code in enumerate(matrix.classes):
        tp, mapped, referenced = int(diag[k]), int(rows[k]), int(cols[k])
        union = mapped + referenced - tp
        iou = _ratio(tp, union)
        iou_ci = wilson(tp, union, z)
        classes[code] = {
            "mapped": mapped,
            "reference": referenced,
            "users_accuracy": _ratio(tp, mapped),
            "users_accuracy_ci": wilson(tp, mapped, z),
            "producers_accuracy": _ratio(tp, referenced),
            "producers_accuracy_ci": wilson(tp, referenced, z),
            "f1": None if iou is None else 2 * iou / (1 + iou),
            "f1_ci": None if iou_ci is None else tuple(2 * v / (1 + v) for v in iou_ci),
            "iou": iou,
            "iou_ci": iou_ci,
        }
    return {
        "units": int(n),
        "overall_accuracy": _ratio(int(diag.sum()), int(n)),
        "overall_accuracy_ci": wilson(int(diag.sum()), int(n), z),
        "kappa": value,
        "kappa_ci": None if se is None else (value - z * se, min(1.0, value + z * se)),
        "classes": classes,
    }


def area_adjusted(
    matrix: Matrix,
    mapped_pixels: Mapping[int, int],
    pixel_area: float | None,
    confidence: float = 0.95,
) -> dict:
    """Olofsson et al. (2014) stratified estimators, the strata being the map classes with
    their mapped pixel counts. Areas are in pixels and, with `pixel_area`, square metres.

    Raises ValueError naming a mapped class that has fewer than two sample units: its
    stratum's variance cannot be estimated."""
    z = z_score(confidence)
    codes = matrix.classes
    counts = matrix.counts.astype(np.float64)
    mapped = np.array([float(mapped_pixels.get(c, 0)) for c in codes])
    unsampled = sorted(c for c in set(mapped_pixels) - set(codes) if mapped_pixels[c])
    if unsampled:
        raise ValueError(f"mapped class {unsampled[0]} has no sample units (a stratum not sampled)")
    n_i = counts.sum(axis=1)
    thin = [c for c, m, n in zip(codes, mapped, n_i, strict=True) if m > 0 and n < 2]
    if thin:
        raise ValueError(
            f"mapped class {thin[0]} has {int(n_i[codes.index(thin[0])])} sample unit(s); "
            "each stratum needs at least 2"
        )
    total = mapped.sum()
    weights = mapped / total
    sampled = n_i > 0
    share = np.zeros_like(counts)  # n_ij / n_i
    share[sampled] = counts[sampled] / n_i[sampled, None]
    p = weights[:, None] * share  # the error matrix in area proportions
    denominator = np.where(n_i > 1, n_i - 1, np.inf)[:, None]
    cell_var = weights[:, None] ** 2 * share * (1 - share) / denominator
    area_se = np.sqrt(cell_var.sum(axis=0))  # of each column's proportion
    ua = np.diag(share)
    ua_var = ua * (1 - ua) / denominator[:, 0]
    oa = float(np.trace(p))
    oa_se = math.sqrt(float((weights**2 * ua_var).sum()))
    estimated = (mapped[:, None] * share).sum(axis=0)  # pixels of each reference class
    scale = pixel_area if pixel_area else None
    classes = {}
    for j, code in enumerate(codes):
        proportion = float(p[:, j].sum())
        pa = _ratio(float(p[j, j]), proportion)
        pa_se = None
        if pa is not None and estimated[j] > 0:
            own = mapped[j] ** 2 * (1 - pa) ** 2 * ua_var[j]
            others = sum(
                mapped[i] ** 2 * share[i, j] * (1 - share[i, j]) / denominator[i, 0]
                for i in range(len(codes))
                if i != j and sampled[i]
            )
            pa_se = math.sqrt(own + pa**2 * others) / float(estimated[j])
        area_px = proportion * total
        half = z * float(area_se[j]) * total
        area_ci_px = (max(0.0, area_px - half), area_px + half)
        classes[code] = {
            "sample_units": int(n_i[j]),
            "mapped_pixels": int(mapped[j]),
            "weight": float(weights[j]),
            "users_accuracy": float(ua[j]) if sampled[j] else None,
            "users_accuracy_se": math.sqrt(ua_var[j]) if sampled[j] else None,
            "producers_accuracy": pa,
            "producers_accuracy_se": pa_se,
            "area_proportion": proportion,
            "area_proportion_se": float(area_se[j]),
            "area_pixels": area_px,
            "area_pixels_ci": area_ci_px,
            "area_m2": None if scale is None else area_px * scale,
            "area_m2_ci": None if scale is None else tuple(v * scale for v in area_ci_px),
        }
    for entry in classes.values():
        for key in ("users_accuracy", "producers_accuracy"):
            value, se = entry[key], entry[f"{key}_se"]
            entry[f"{key}_ci"] = None if value is None or se is None else _unit(value, z * se)
    return {
        "z": z,
        "mapped_pixels_total": int(total),
        "pixel_area_m2": pixel_area,
        "overall_accuracy": oa,
        "overall_accuracy_se": oa_se,
        "overall_accuracy_ci": _unit(oa, z * oa_se),
        "error_matrix_proportions": p.tolist(),
        "classes": classes,
    }


def allocate(mapped_pixels: Mapping[int, int], total: int, minimum: int) -> dict[int, int]:
    """Sample units per map class: proportional to mapped area, raised to `minimum` for rare
    classes (as Olofsson et al. 2014 advise) and never more than a class has pixels; the
    raised classes' extra units come out of the largest classes."""
    present = {c: int(n) for c, n in mapped_pixels.items() if n > 0}
    if not present:
        return {}
    area = sum(present.values())
    floor = {c: min(minimum, n) for c, n in present.items()}
    share = {c: max(floor[c], round(total * n / area)) for c, n in present.items()}
    surplus = sum(share.values()) - max(total, sum(floor.values()))
    for code in sorted(present, key=lambda c: -present[c]):  # largest first
        if surplus <= 0:
            break
        give = min(surplus, share[code] - floor[code])
        share[code] -= give
        surplus -= give
    return {c: min(n, present[c]) for c, n in share.items()}
