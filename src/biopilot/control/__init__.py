"""Feeding and setpoint strategies (MPC), written back to the plant through the line."""

from biopilot.control.adapt import ParameterAdapter, Transition
from biopilot.control.controller import Controller, make_problem, state_vector
from biopilot.control.fallback import recipe_setpoints
from biopilot.control.model import ADAPTED_PARAMETERS, IntervalModel, MoveMedia
from biopilot.control.nlp import Bands, MoveBounds, ShrinkingHorizonProblem, Solution, WarmStart
from biopilot.control.online import ControlLoop, LoopStep
from biopilot.control.setpoints import (
    Alarm,
    ControlDecision,
    ControlMode,
    SetpointLimits,
    Setpoints,
    clamp_setpoints,
)

__all__ = [
    "ADAPTED_PARAMETERS",
    "Alarm",
    "Bands",
    "ControlDecision",
    "ControlLoop",
    "ControlMode",
    "Controller",
    "IntervalModel",
    "LoopStep",
    "MoveBounds",
    "MoveMedia",
    "ParameterAdapter",
    "SetpointLimits",
    "Setpoints",
    "ShrinkingHorizonProblem",
    "Solution",
    "Transition",
    "WarmStart",
    "clamp_setpoints",
    "make_problem",
    "recipe_setpoints",
    "state_vector",
]
