"""Metrics of generated samples' features, as the JSON numbers gan_jax.evaluate prints.

Bundles of `gan_jax.metrics` over one feature space: FID, KID, precision/recall and the
Inception Score of images, per-class scores of conditional generators, and the mode counts
of the toy mixtures.
"""
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import input_pipeline, metrics
from gan_jax.reference import Reference

KID_SUBSET_SIZE = 1000  # as the reference (Binkowski et al., 2018), or all points if fewer
INCEPTION_SCORE_SPLITS = 10  # as the original code and the papers


def number(value: Any) -> float | int:
  """A JSON-friendly scalar: ints stay ints, floats keep 6 significant digits."""
  value = np.asarray(value)
  return int(value) if np.issubdtype(value.dtype, np.integer) else float(f'{float(value):.6g}')


@functools.partial(jax.jit, static_argnames=('kid_subset_size', 'score_splits',
                                             'count_classes'))
def _metric_values(features: jax.Array, logits: jax.Array, real: Reference, key: jax.Array,
                   kid_subset_size: int, score_splits: int,
                   count_classes: bool) -> dict[str, jax.Array]:
  # One program: run op by op, the metrics compile ~130 small ones (10 s on 2 CPU cores).
  values = {'fid': metrics.frechet_distance(*metrics.feature_statistics(features), real.mu,
                                            real.sigma)}
  if real.features is not None:
    values['kid'], values['kid_std'] = metrics.kernel_inception_distance(
        key, features, real.features, subset_size=kid_subset_size)
    # Equal-sized sets, as Kynkaanniemi et al. compare them: radii depend on the density.
    values['precision'], values['recall'] = metrics.precision_recall(
        real.features[:features.shape[0]], features, k=3)
  if score_splits > 1:
    values['inception_score'], values['inception_score_std'] = (
        metrics.split_inception_score(logits, score_splits))
  else:
    values['inception_score'] = metrics.inception_score(logits)
  if count_classes:
    values['classes_covered'] = metrics.classes_covered(logits)
  return values


def image_metrics(features: np.ndarray, logits: np.ndarray, real: Reference, seed: int,
                  score_splits: int = 1, count_classes: bool = True) -> dict[str, float | int]:
  """FID, KID, precision/recall, Inception Score (and classes covered) of generated images.

  Args:
    features: features [N, D] of the generated images.
    logits: logits [N, K] of the same images.
    real: the Reference; KID and precision/recall need its features.
    seed: picks KID's subsets.
    score_splits: the Inception Score's splits; above 1 adds inception_score_std.
    count_classes: the logits are the data set's classes: adds classes_covered.
  """
  subset_size = min(KID_SUBSET_SIZE, len(features),
                    len(features) if real.features is None else len(real.features))
  values = _metric_values(features, logits, real, jax.random.PRNGKey(seed), subset_size,
                          score_splits, count_classes)
  return {name: number(value) for name, value in values.items()}


def intra_fid(features: np.ndarray, labels: np.ndarray, real: Reference,
              num_classes: int) -> dict[str, Any]:
  """The mean over classes of each class's FID against its real images (Miyato & Koyama, 2018).

  Returns:
    {intra_fid, intra_fid_per_class}: the list indexed by class, None for a class without
    two samples and two real images.
  """
  fids = [None] * num_classes
  for k in np.unique(labels):
    fake, real_k = features[labels == k], real.features[real.labels == k]
    if min(len(fake), len(real_k)) > 1:  # a covariance needs two examples
      fids[k] = number(metrics.frechet_distance(*metrics.feature_statistics(fake),
                                                 *metrics.feature_statistics(real_k)))
  return {'intra_fid': number(np.mean([fid for fid in fids if fid is not None] or np.nan)),
          'intra_fid_per_class': fids}


def class_faithfulness(logits: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
  """How often the data set's classifier sees the class a conditional generator was asked for."""
  overall, per_class = metrics.class_faithfulness(logits, labels, logits.shape[1])
  return {'class_faithfulness': number(overall),
          'class_faithfulness_per_class': [None if np.isnan(v) else number(v)
                                           for v in np.asarray(per_class)]}


def toy_metrics(points: np.ndarray, dataset: str) -> dict[str, float | int]:
  """Modes covered (of num_modes) and the share of high-quality points of a toy data set."""
  centers, std = input_pipeline.toy_modes(dataset)
  coverage = metrics.mode_coverage(jnp.asarray(points), centers, std)
  return {'modes_covered': number(coverage.modes_covered), 'num_modes': len(centers),
          'high_quality_share': number(coverage.high_quality_share)}


def toy_floor(dataset: str, num_samples: int) -> dict[str, float | int]:
  """toy_metrics of `num_samples` points drawn from the mixture itself."""
  centers, std = input_pipeline.toy_modes(dataset)
  rng = np.random.default_rng(0)
  points = centers[rng.integers(len(centers), size=num_samples)]
  return toy_metrics(points + std * rng.standard_normal(points.shape), dataset)
