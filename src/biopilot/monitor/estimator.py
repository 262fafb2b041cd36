"""Estimate the culture's unmeasured states between samples: an unscented Kalman filter.

Why a UKF. The kinetics are smooth but strongly nonlinear (Monod terms, a metabolic shift,
starvation death), so an EKF's Jacobians would be both laborious (CasADi could give them) and
poor across a day without samples; a particle filter needs thousands of trajectories for 20
dimensions. The unscented transform needs ``2n+1`` deterministic trajectories, which the
shared :func:`biopilot.models.kinetics.derivatives` evaluates in ONE vectorised call per RK4
stage (Julier & Uhlmann 2004; Wan & van der Merwe 2000). Default weights are the cubature
rule (alpha=1, beta=0, kappa=0; Arasaratnam & Haykin 2009): positive weights, so the
covariance stays positive definite.

The state is the 12 kinetic states of :data:`~biopilot.models.kinetics.STATE_NAMES`, scaled
(:data:`~biopilot.monitor.estimator_model.STATE_SCALE`), augmented with log-multipliers of
the parameters most uncertain from batch to batch and the capacitance factor, as random
walks: the filter runs the shared equations with the *nominal* parameters and learns the
mismatch. Constraints: concentrations are non-negative by clipping the sigma points after
every RK4 step and the posterior mean after every update (Kolås, Foss & Schei 2009); a log
transform was not used because lactate, ammonia and titer start at exactly zero.

The step contract is do-mpc's: ``estimate = estimator.step(y, t_utc)``. ``y`` is any mix of
online readings, soft-sensor outputs and at-line assays, each with its variance; missing,
untrusted and outlying ones (chi-square innovation gate) are skipped and reported.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import chi2

from biopilot.models.kinetics import STATE_NAMES, KineticParameters, add_bolus, derivatives
from biopilot.monitor.estimator_inputs import FeedSchedule, Segment, StepInputs
from biopilot.monitor.estimator_measure import (
    MEASUREMENT_MODELS,
    Measurement,
    MeasurementsLike,
    Rejection,
    as_measurements,
    quantity,
    screen,
)
from biopilot.monitor.estimator_model import (
    DEFAULT_PARAMETERS,
    DEFAULT_PRIOR_SD,
    DEFAULT_STATE_NOISE,
    STATE_SCALE,
    UncertainParameter,
    apply_multipliers,
    state_noise_sd,
)
from biopilot.monitor.estimator_ukf import (
    gated_update,
    moments,
    rk4,
    sigma_points,
    spd,
    unscented_weights,
)
from biopilot.twin.process import recipe_state0
from biopilot.twin.recipe import Recipe, default_recipe

__all__ = ["Estimate", "EstimatorConfig", "StateEstimator"]

_NX = len(STATE_NAMES)


@dataclass(frozen=True)
class EstimatorConfig:
    """Tuning of the filter (hyper-parameters; defaults checked on twin batches).

    Parameters
    ----------
    uncertain : tuple of UncertainParameter
        Parameters learned as random-walk log-multipliers.
    prior_sd, state_noise : mapping of state name to (relative, absolute) sd
        Spread at inoculation and process noise per sqrt(hour).
    error_correlation_h : mapping of str to float
        Correlation time (h) of a source's or a tag's measurement errors. A soft sensor's
        errors are correlated in time (a calibration bias follows the process state), so
        fusing each prediction as independent would make the filter overconfident: the
        variance of each is inflated by ``(1 + a) / (1 - a)``, ``a = exp(-dt / tau)`` the
        error correlation with the previous one of the same tag, ``dt`` apart (the
        effective-sample-size factor of the mean of an AR(1) series). Set it from the soft
        sensor's validation residuals; the default (6 h for ``raman/``) is an assumption.
    gate_probability : float
        An innovation beyond this chi-square(1) quantile rejects the measurement
        (0.9999: 15.1, a 3.9-sigma outlier).
    max_step_h : float
        Longest RK4 step, hours (the fastest mode, glucose or glutamine running out at
        peak density, is ~20 1/h: RK4 is stable below ~0.14 h).
    alpha, beta, kappa : float
        Unscented-transform scaling (Wan & van der Merwe 2000).
    """

    uncertain: tuple[UncertainParameter, ...] = DEFAULT_PARAMETERS
    prior_sd: Mapping[str, tuple[float, float]] = field(
        default_factory=lambda: dict(DEFAULT_PRIOR_SD)
    )
    state_noise: Mapping[str, tuple[float, float]] = field(
        default_factory=lambda: dict(DEFAULT_STATE_NOISE)
    )
    error_correlation_h: Mapping[str, float] = field(default_factory=lambda: {"raman": 6.0})
    gate_probability: float = 0.9999
    max_step_h: float = 1.0 / 12.0
    alpha: float = 1.0
    beta: float = 0.0
    kappa: float = 0.0


@dataclass(frozen=True)
class Estimate:
    """The estimator's belief after one step.

    Attributes
    ----------
    time_utc : Timestamp or None
        Time of the estimate (None when the estimator runs on hours only).
    t_h : float
        Hours since inoculation.
    mean, std : dict of str to float
        Mean and standard deviation of each state of
        :data:`~biopilot.models.kinetics.STATE_NAMES`, in its units.
    multipliers, multipliers_sd : dict of str to float
        Learned parameter multipliers (median, 1 = nominal) and the sd of their logarithm
        (~ relative sd).
    used : tuple of str
        Tags fused at this step.
    rejected : tuple of Rejection
        Measurements skipped, with the reason (missing, untrusted, no model, bad variance,
        gated) and, for gated ones, their normalised innovation squared.
    nis, nis_dof : float, int
        Normalised innovation squared of the fused measurements and their number (NaN, 0
        when nothing was fused); E[nis] = nis_dof for a consistent filter.
    covariance : ndarray
        Covariance of the 12 states, natural units.
    """

    time_utc: pd.Timestamp | None
    t_h: float
    mean: dict[str, float]
    std: dict[str, float]
    multipliers: dict[str, float]
    multipliers_sd: dict[str, float]
    used: tuple[str, ...]
    rejected: tuple[Rejection, ...]
    nis: float
    nis_dof: int
    covariance: np.ndarray

    def interval(self, name: str, k: float = 2.0) -> tuple[float, float]:
        """Return ``mean -+ k std`` of state ``name`` (lower bound not below 0)."""
        m, s = self.mean[name], self.std[name]
        return max(m - k * s, 0.0), m + k * s


class StateEstimator:
    """Unscented Kalman filter of a fed-batch culture on the shared kinetics.

    Parameters
    ----------
    recipe : Recipe, optional
        The recipe run (feeds, temperature, initial state); default recipe if None.
    schedule : FeedSchedule, optional
        Inputs over time; default the recipe's planned boluses
        (:meth:`FeedSchedule.planned`). Use :meth:`FeedSchedule.from_batch` for a logged
        batch, or pass :class:`StepInputs` to :meth:`step`.
    parameters : KineticParameters, optional
        The estimator's own (nominal) parameter values.
    start_utc : Timestamp or str, optional
        Inoculation time; needed to step by ``t_utc``.
    x0 : ndarray, optional
        Prior mean of the states; default the recipe's inoculum.
    config : EstimatorConfig, optional
        Filter tuning.

    Examples
    --------
    >>> est = StateEstimator()
    >>> e = est.step({"vcd_cells_per_ml": (9e5, (0.05 * 9e5) ** 2)}, dt_h=1.0)
    >>> 7e5 < e.mean["vcd_cells_per_ml"] < 1e6 and e.rejected == ()
    True
    """

    def __init__(
        self,
        recipe: Recipe | None = None,
        *,
        schedule: FeedSchedule | None = None,
        parameters: KineticParameters | None = None,
        start_utc: pd.Timestamp | str | None = None,
        x0: np.ndarray | None = None,
        config: EstimatorConfig | None = None,
    ) -> None:
        self.recipe = default_recipe() if recipe is None else recipe
        self.schedule = FeedSchedule.planned(self.recipe) if schedule is None else schedule
        self.parameters = KineticParameters() if parameters is None else parameters
        self.start_utc = None if start_utc is None else _utc(start_utc)
        self.config = EstimatorConfig() if config is None else config
        cfg = self.config
        x = recipe_state0(self.recipe) if x0 is None else np.asarray(x0, dtype=float)
        n_par = len(cfg.uncertain)
        self._weights = unscented_weights(_NX + n_par, cfg.alpha, cfg.beta, cfg.kappa)
        self._gate = float(chi2.ppf(cfg.gate_probability, 1))
        self._lower = np.concatenate([np.zeros(_NX), np.full(n_par, -np.inf)])
        self._walk = np.array([u.walk_sd_per_sqrt_h**2 for u in cfg.uncertain])
        prior = state_noise_sd(x, cfg.prior_sd) / STATE_SCALE
        self._mean = np.concatenate([x / STATE_SCALE, np.zeros(n_par)])
        self._cov = np.diag(np.concatenate([prior**2, [u.prior_sd**2 for u in cfg.uncertain]]))
        self.t_h = 0.0
        # Scheduled boluses already mixed in (by identity: the schedule keeps them alive).
        self._scheduled = {id(b) for b in self.schedule.boluses}
        self._applied: set[int] = set()
        self._last_seen: dict[str, float] = {}  # tag -> time (h) of its last fused value
        self._u = np.asarray(self.schedule.segments(0.0, 1e-6)[0].u, dtype=float)
        #: Inputs held by a controller (INPUT_NAMES order); when set, they replace the
        #: schedule's feeds and temperature for every step without ``inputs``.
        self.held_u: tuple[float, ...] | None = None

    def step(
        self,
        measurements: MeasurementsLike = None,
        t_utc: pd.Timestamp | str | None = None,
        *,
        dt_h: float | None = None,
        inputs: StepInputs | None = None,
    ) -> Estimate:
        """Predict to the measurement time, fuse the measurements and return the estimate.

        Parameters
        ----------
        measurements : mapping or sequence, optional
            ``{tag: (value, variance)}``, ``{tag: Measurement}`` or a list of
            :class:`Measurement`; variance in the tag's units squared.
        t_utc : Timestamp or str, optional
            Time of the measurements (tz-aware UTC; needs ``start_utc``).
        dt_h : float, optional
            Or the hours since the last step. Neither: no prediction (update only).
        inputs : StepInputs, optional
            Inputs over the step; default the schedule.

        Returns
        -------
        Estimate

        Raises
        ------
        ValueError
            If time runs backwards, ``t_utc`` is naive or given without ``start_utc``.

        Notes
        -----
        Inputs are held over ``[t_last, t)``; a bolus logged at ``t`` is mixed in by the next
        step. A second step at the same time (``dt_h=0``) mixes it in first: so at a feed
        time, fuse the at-line sample (drawn before the feed) in one step, then the probes
        (which read after it) in a second.
        """
        t1 = self._target_time(t_utc, dt_h)
        if inputs is None and self.held_u is not None:
            inputs = StepInputs(u=self.held_u)
        self._predict(self.schedule.step_segments(self.t_h, t1, inputs))
        self.t_h = t1
        return self._update(as_measurements(measurements))

    def estimate(self) -> Estimate:
        """Return the current estimate without stepping."""
        return self._estimate((), (), math.nan, 0)

    # -- prediction ------------------------------------------------------------------------

    def _predict(self, segments: Sequence[Segment]) -> None:
        cfg, w = self.config, self._weights
        for seg in segments:
            if seg.u:
                self._u = np.asarray(seg.u, dtype=float)
            boluses = [b for b in seg.boluses if id(b) not in self._applied]
            span = seg.t1_h - seg.t0_h
            if span <= 0 and not boluses:
                continue
            pts = sigma_points(self._mean, self._cov, w.spread)
            x = pts[:_NX] * STATE_SCALE[:, None]
            for b in boluses:
                x = np.asarray(add_bolus(x, b.volume_l, b.feed))
                if id(b) in self._scheduled:
                    self._applied.add(id(b))
            p, _ = apply_multipliers(self.parameters, cfg.uncertain, pts[_NX:])
            x = rk4(_rhs(self._u, p), x, span, cfg.max_step_h, self._lower[:_NX])
            pts = np.concatenate([x / STATE_SCALE[:, None], pts[_NX:]])
            mean, cov = moments(pts, w)
            sd = state_noise_sd(mean[:_NX] * STATE_SCALE, cfg.state_noise) / STATE_SCALE
            cov += np.diag(np.concatenate([sd**2, self._walk]) * span)
            self._mean, self._cov = mean, spd(cov)

    # -- update ----------------------------------------------------------------------------

    def _update(self, measurements: list[Measurement]) -> Estimate:
        rejected: list[Rejection] = []
        ok: list[Measurement] = []
        for m in measurements:
            reason = screen(m)
            if reason is None:
                ok.append(m)
            else:
                rejected.append(Rejection(m.tag, m.value, reason))
        if not ok:
            return self._estimate((), tuple(rejected), math.nan, 0)
        w = self._weights
        pts = sigma_points(self._mean, self._cov, w.spread)
        x = pts[:_NX] * STATE_SCALE[:, None]
        p, mult = apply_multipliers(self.parameters, self.config.uncertain, pts[_NX:])
        n_pts = x.shape[1]
        y_pts = np.stack(
            [
                np.broadcast_to(MEASUREMENT_MODELS[quantity(m.tag)](x, self._u, p, mult), n_pts)
                for m in ok
            ]
        )
        y = np.array([float(m.value) for m in ok])  # type: ignore[arg-type]
        r = np.array([m.variance * self._correlation_inflation(m.tag) for m in ok])
        res = gated_update(self._mean, self._cov, pts, y_pts, y, r, w, self._gate)
        self._mean = np.maximum(res.mean, self._lower)
        self._cov = res.cov
        for m, good, nis in zip(ok, res.accepted, res.nis_each, strict=True):
            if not good:
                rejected.append(Rejection(m.tag, m.value, "gated", float(nis)))
        used = tuple(m.tag for m, good in zip(ok, res.accepted, strict=True) if good)
        return self._estimate(used, tuple(rejected), res.nis, len(used))

    def _correlation_inflation(self, tag: str) -> float:
        """Return the variance factor of a measurement with time-correlated errors."""
        corr = self.config.error_correlation_h
        tau = corr.get(tag, corr.get(tag.rsplit("/", 1)[0] if "/" in tag else tag))
        last = self._last_seen.get(tag)
        self._last_seen[tag] = self.t_h
        if not tau or last is None:
            return 1.0
        a = math.exp(-max(self.t_h - last, 1e-9) / tau)
        return (1.0 + a) / (1.0 - a)

    def _estimate(
        self, used: tuple[str, ...], rejected: tuple[Rejection, ...], nis: float, dof: int
    ) -> Estimate:
        mean = self._mean[:_NX] * STATE_SCALE
        cov = self._cov[:_NX, :_NX] * np.outer(STATE_SCALE, STATE_SCALE)
        sd = np.sqrt(np.diag(self._cov))
        names = [u.name for u in self.config.uncertain]
        when = None
        if self.start_utc is not None:
            when = self.start_utc + pd.Timedelta(hours=self.t_h)
        return Estimate(
            time_utc=when,
            t_h=self.t_h,
            mean=dict(zip(STATE_NAMES, mean.tolist(), strict=True)),
            std=dict(zip(STATE_NAMES, (sd[:_NX] * STATE_SCALE).tolist(), strict=True)),
            multipliers=dict(zip(names, np.exp(self._mean[_NX:]).tolist(), strict=True)),
            multipliers_sd=dict(zip(names, sd[_NX:].tolist(), strict=True)),
            used=used,
            rejected=rejected,
            nis=nis,
            nis_dof=dof,
            covariance=cov,
        )

    def _target_time(self, t_utc: pd.Timestamp | str | None, dt_h: float | None) -> float:
        if t_utc is not None:
            if self.start_utc is None:
                raise ValueError("t_utc given but the estimator has no start_utc")
            ts = pd.Timestamp(t_utc)
            if ts.tzinfo is None:
                raise ValueError(f"t_utc must be timezone-aware UTC, got naive {ts}")
            t1 = (ts - self.start_utc) / pd.Timedelta(hours=1)
        else:
            t1 = self.t_h + (0.0 if dt_h is None else float(dt_h))
        if t1 < self.t_h - 1e-9:
            raise ValueError(f"time runs backwards: {t1:.4f} h < {self.t_h:.4f} h")
        return max(t1, self.t_h)


def _rhs(u: np.ndarray, p: KineticParameters) -> Callable[[np.ndarray], np.ndarray]:
    """Return x -> dx/dt of the shared kinetics at inputs ``u``, all columns in one call."""
    return lambda x: np.asarray(derivatives(x, u, p))


def _utc(when: pd.Timestamp | str) -> pd.Timestamp:
    ts = pd.Timestamp(when)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
