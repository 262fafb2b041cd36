"""Holographic imaging: holograms to phase, cells, features and classes."""

from biopilot.imaging.autofocus import autofocus
from biopilot.imaging.cellnet import CellMaps, CellNet, load_default_cellnet, predict_maps
from biopilot.imaging.classify import (
    CellClassifier,
    CellSamples,
    cell_samples,
    default_weights_path,
    load_default_classifier,
)
from biopilot.imaging.corenet import CoreNet, load_default_corenet
from biopilot.imaging.dualwave import TwoWavelengthPhase, combine_wavelengths
from biopilot.imaging.features import FEATURE_COLUMNS, dry_mass_pg, measure_cells
from biopilot.imaging.frame_result import FrameAnalysis
from biopilot.imaging.merge import MergeNet, load_default_mergenet, merge_cells
from biopilot.imaging.metrics import SegmentationScore, match_labels, score_segmentation
from biopilot.imaging.phase import backpropagate, retrieve_phase, unwrap_cells
from biopilot.imaging.pipeline import analyze_frame, analyze_phase
from biopilot.imaging.reconstruct import Reconstruction, reconstruct
from biopilot.imaging.refine import PhaseFit, refine_phase
from biopilot.imaging.segment import background_level, segment_cells, segment_maps

__all__ = [
    "FEATURE_COLUMNS",
    "CellClassifier",
    "CellMaps",
    "CellNet",
    "CellSamples",
    "CoreNet",
    "FrameAnalysis",
    "MergeNet",
    "PhaseFit",
    "Reconstruction",
    "SegmentationScore",
    "TwoWavelengthPhase",
    "analyze_frame",
    "analyze_phase",
    "autofocus",
    "background_level",
    "backpropagate",
    "cell_samples",
    "combine_wavelengths",
    "default_weights_path",
    "dry_mass_pg",
    "load_default_cellnet",
    "load_default_classifier",
    "load_default_corenet",
    "load_default_mergenet",
    "match_labels",
    "measure_cells",
    "merge_cells",
    "predict_maps",
    "reconstruct",
    "refine_phase",
    "retrieve_phase",
    "score_segmentation",
    "segment_cells",
    "segment_maps",
    "unwrap_cells",
]
