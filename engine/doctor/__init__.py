"""The training doctor: diagnoses a run while it trains, from the statistics the loop logs anyway and from the
progress grid's images, and writes plain-words findings with concrete config changes to findings.json."""

from engine.doctor.doctor import DETECTORS, Doctor, describe, diagnose
from engine.doctor.probe import Probe

__all__ = ["DETECTORS", "Doctor", "Probe", "describe", "diagnose"]
