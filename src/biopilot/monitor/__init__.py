"""Monitoring: soft sensors, state estimation, batch MSPC and alarms."""

from biopilot.monitor.alarms import AlarmEngine, AlarmStatus, AlarmTransition, default_rules
from biopilot.monitor.alarms_rules import LimitRule, MspcRule, RateRule, SanityRule, TrustRule
from biopilot.monitor.campaign import design_campaign, run_campaign
from biopilot.monitor.estimator import Estimate, EstimatorConfig, StateEstimator
from biopilot.monitor.estimator_measure import Measurement
from biopilot.monitor.mspc import BatchEvolutionModel, BatchLevelModel
from biopilot.monitor.mspc import load as load_mspc_model
from biopilot.monitor.mspc_pca import PCAMonitor
from biopilot.monitor.softsensor import RamanSoftSensor, SoftSensorPrediction

__all__ = [
    "AlarmEngine",
    "AlarmStatus",
    "AlarmTransition",
    "BatchEvolutionModel",
    "BatchLevelModel",
    "Estimate",
    "EstimatorConfig",
    "LimitRule",
    "Measurement",
    "MspcRule",
    "PCAMonitor",
    "RamanSoftSensor",
    "RateRule",
    "SanityRule",
    "SoftSensorPrediction",
    "StateEstimator",
    "TrustRule",
    "default_rules",
    "design_campaign",
    "load_mspc_model",
    "run_campaign",
]
