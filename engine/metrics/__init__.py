"""Metrics: FID, KID, IS, precision/recall (Inception-v3 via torch-fidelity), SWD and a memorisation check.

Result keys carry the number of generated samples: 'fid_2k' is FID on 2000 samples, shown as 'FID-2k'.
"""

from engine.metrics import fid, inception_score, kid, nearest, precision_recall, swd  # noqa: F401  (register)
from engine.metrics.errors import MetricUnavailable
from engine.metrics.evaluate import Results, evaluate, select_real
from engine.metrics.features import FeatureNet, FeatureSet, feature_net_names, register_feature_net
from engine.metrics.keys import (display_label, format_count, lower_is_better, metric_key, output_of, parse_count,
                                 parse_key)
from engine.metrics.registry import Metric, Output, get_metric, list_metrics, register_metric
from engine.metrics.weights import CLI_FLAG, ENV_VAR

__all__ = [
    "CLI_FLAG", "ENV_VAR", "FeatureNet", "FeatureSet", "Metric", "MetricUnavailable", "Output", "Results",
    "display_label", "evaluate", "feature_net_names", "format_count", "get_metric", "list_metrics",
    "lower_is_better", "metric_key", "output_of", "parse_count", "parse_key", "register_feature_net",
    "register_metric", "select_real",
]
