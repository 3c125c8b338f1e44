"""Metrics against hand-computed values, their theory and (FID) scipy's float64 sqrtm."""
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import linalg

from gan_jax import input_pipeline, metrics

# Everything runs jitted: what users do, and one compilation per shape instead of one per op.
frechet_distance = jax.jit(metrics.frechet_distance)
feature_statistics = jax.jit(metrics.feature_statistics)
polynomial_mmd2 = jax.jit(metrics.polynomial_mmd2)
kernel_inception_distance = jax.jit(metrics.kernel_inception_distance,
                                    static_argnames=('num_subsets', 'subset_size'))
precision_recall = jax.jit(metrics.precision_recall, static_argnames=('k', 'chunk_size'))
inception_score = jax.jit(metrics.inception_score)
classes_covered = jax.jit(metrics.classes_covered)
mode_coverage = jax.jit(metrics.mode_coverage)


def _random_features(seed, num, dim, shift=0.0):
  """Correlated, non-negative features like Inception pool3 activations, float64."""
  rng = np.random.default_rng(seed)
  mixing = rng.standard_normal((dim, dim)) / np.sqrt(dim)
  return np.maximum(rng.standard_normal((num, dim)) @ mixing + 0.5 + shift, 0)


def _reference_fid(features1, features2):
  """The FID reference implementation's formula, in numpy float64."""
  mu1, mu2 = features1.mean(0), features2.mean(0)
  sigma1, sigma2 = np.cov(features1, rowvar=False), np.cov(features2, rowvar=False)
  covmean = linalg.sqrtm(sigma1 @ sigma2).real
  return (np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2)
          - 2 * np.trace(covmean))


def test_feature_statistics_hand_computed():
  # Deviations from the mean (1, 1): (-1, -1), (0, -1), (1, 2); sums of products / (3 - 1).
  mu, sigma = feature_statistics(jnp.array([[0., 0.], [1., 0.], [2., 3.]]))
  np.testing.assert_allclose(mu, [1.0, 1.0], rtol=1e-6)
  np.testing.assert_allclose(sigma, [[1.0, 1.5], [1.5, 3.0]], rtol=1e-6)  # not 2/3, 1, 2


@pytest.mark.parametrize('dim, a, b, mu_shift, expected', [
    (4, 4.0, 1.0, 1.0, 4 * (2 - 1) ** 2 + 4 * 1.0),  # d (sqrt a - sqrt b)^2 + |mu1 - mu2|^2
    (3, 9.0, 0.25, 0.0, 3 * (3 - 0.5) ** 2),
    (5, 2.0, 2.0, 3.0, 5 * 3.0 ** 2),
])
def test_frechet_distance_of_scaled_identities(dim, a, b, mu_shift, expected):
  fid = frechet_distance(jnp.zeros(dim), a * jnp.eye(dim), jnp.full(dim, mu_shift),
                         b * jnp.eye(dim))
  np.testing.assert_allclose(fid, expected, rtol=1e-5)


def test_frechet_distance_of_identical_statistics_is_zero():
  mu, sigma = feature_statistics(jnp.float32(_random_features(0, 200, 32)))
  # Relative to tr(S1) + tr(S2), the terms that cancel; float32 leaves a little.
  assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-5 * 2 * jnp.trace(sigma)


@pytest.mark.parametrize('seed, num1, num2, dim', [(1, 50, 80, 2), (2, 100, 60, 8),
                                                    (3, 300, 300, 32)])
def test_frechet_distance_matches_scipy_reference(seed, num1, num2, dim):
  features1 = _random_features(seed, num1, dim)
  features2 = _random_features(seed + 100, num2, dim, shift=0.1)
  expected = _reference_fid(features1, features2)
  stats1 = feature_statistics(jnp.float32(features1))
  stats2 = feature_statistics(jnp.float32(features2))
  fid = frechet_distance(*stats1, *stats2)
  np.testing.assert_allclose(fid, expected, rtol=1e-4)
  # The distance is symmetric, though the computation (sqrt of S1 first) is not.
  np.testing.assert_allclose(frechet_distance(*stats2, *stats1), expected, rtol=1e-4)


def test_frechet_distance_in_float64_matches_reference_closely():
  features1, features2 = _random_features(4, 100, 16), _random_features(5, 120, 16, 0.2)
  with jax.enable_x64(True):
    stats1 = feature_statistics(jnp.asarray(features1))
    stats2 = feature_statistics(jnp.asarray(features2))
    fid = frechet_distance(*stats1, *stats2)
    assert fid.dtype == jnp.float64
  np.testing.assert_allclose(fid, _reference_fid(features1, features2), rtol=1e-10)


def test_polynomial_mmd2_hand_computed_1d():
  # d = 1, k(a, b) = (a b + 1)^3. x = {0, 1}, y = {1, 2}.
  # k(0, 1) = 1 (the only x pair), k(1, 2) = 27 (the only y pair),
  # x-y pairs: k(0, 1) + k(0, 2) + k(1, 1) + k(1, 2) = 1 + 1 + 8 + 27 = 37.
  expected = 2 * 1 / (2 * 1) + 2 * 27 / (2 * 1) - 2 * 37 / (2 * 2)  # = 9.5
  x, y = jnp.array([[0.], [1.]]), jnp.array([[1.], [2.]])
  np.testing.assert_allclose(polynomial_mmd2(x, y), expected, rtol=1e-6)
  np.testing.assert_allclose(polynomial_mmd2(y, x), expected, rtol=1e-6)


def test_polynomial_mmd2_hand_computed_2d_unequal_sizes():
  # d = 2, k(a, b) = (a.b / 2 + 1)^3; every pair involving (0, 0) or orthogonal gives 1.
  x = jnp.array([[1., 1.], [0., 0.]])
  y = jnp.array([[2., 0.], [0., 0.], [0., 2.]])
  within_x = 2 * 1 / (2 * 1)  # one pair, k = 1, both orders; diagonal k((1,1),(1,1)) = 8 out
  within_y = 6 * 1 / (3 * 2)  # three pairs, all k = 1
  # (1, 1) with (2, 0) and (0, 2): (2 / 2 + 1)^3 = 8 each; the other 4 pairs give 1.
  across = (8 + 1 + 8 + 1 + 1 + 1) / (2 * 3)
  expected = within_x + within_y - 2 * across  # = -14/3: the U-statistic can be negative
  np.testing.assert_allclose(polynomial_mmd2(x, y), expected, rtol=1e-6)


def test_polynomial_mmd2_is_unbiased_for_equal_distributions():
  """Averaged over many small sets, E MMD^2 = 0; with the diagonals kept it would be ~1.5."""
  x, y = jax.random.normal(jax.random.PRNGKey(0), (2, 200, 10, 16))  # 200 pairs of 10 points
  estimates = jax.jit(jax.vmap(metrics.polynomial_mmd2))(x, y)
  assert abs(jnp.mean(estimates)) < 0.1  # standard error of the mean: about 0.017


def test_kernel_inception_distance_with_whole_sets_is_the_plain_mmd2():
  # A subset of all N points without replacement is a permutation: every subset agrees.
  x = jax.random.normal(jax.random.PRNGKey(1), (40, 8))
  y = jax.random.normal(jax.random.PRNGKey(2), (40, 8)) + 0.5
  kid = functools.partial(kernel_inception_distance, num_subsets=3, subset_size=40)
  mean, std = kid(jax.random.PRNGKey(0), x, y)
  np.testing.assert_allclose(mean, polynomial_mmd2(x, y), rtol=1e-5)
  assert std < 1e-5 * abs(mean)


def test_kernel_inception_distance_separates_distributions():
  x, y = jax.random.normal(jax.random.PRNGKey(1), (2, 500, 16))
  shifted = y + 0.3
  key = jax.random.PRNGKey(0)
  kid = functools.partial(kernel_inception_distance, num_subsets=10, subset_size=100)
  same_mean, same_std = kid(key, x, y)
  shifted_mean, _ = kid(key, x, shifted)
  assert abs(same_mean) < 0.02 < 0.2 < shifted_mean  # measured: -0.002 and 0.29
  assert same_std > 0  # different subsets, different estimates
  np.testing.assert_array_equal(kid(key, x, y), (same_mean, same_std))  # one key, one value


def test_kernel_inception_distance_rejects_subsets_larger_than_the_sets():
  x = jnp.zeros((10, 4))
  with pytest.raises(ValueError, match='subset_size=11'):
    metrics.kernel_inception_distance(jax.random.PRNGKey(0), x, x, subset_size=11)


def _column(values):
  return jnp.array(values, dtype=jnp.float32)[:, None]


def test_precision_recall_hand_computed_1d():
  # k = 1. Reals 0..4: every nearest neighbour at distance 1. Fakes: radii 0.2 (0 and
  # 0.2) and 0.5 (10 and 10.5). Precision: 0 and 0.2 lie within 1 of a real, 10 and 10.5
  # do not. Recall: only real 0 lies within a fake ball (real 1 is 0.8 from fake 0.2).
  reals, fakes = _column([0, 1, 2, 3, 4]), _column([0, 0.2, 10, 10.5])
  np.testing.assert_allclose(precision_recall(reals, fakes, k=1), (0.5, 0.2), rtol=1e-6)


def test_precision_counts_points_on_the_boundary_with_k3():
  # Radii (3rd neighbour) of reals 0..4: 3, 2, 2, 2, 3. Fake 7 and -3 are exactly 3 from
  # the ends (inside), 7.5 and -3.5 beyond (outside), 2 is a real point (inside).
  precision, _ = precision_recall(_column([0, 1, 2, 3, 4]), _column([7, 7.5, -3, -3.5, 2]))
  np.testing.assert_allclose(precision, 3 / 5, rtol=1e-6)


def test_precision_recall_count_repeated_points_as_neighbours():
  # Reals 0, 0, 0, 5 with k = 2: each 0's 2nd neighbour is another 0 (radius 0; it would
  # be 5 if repeats were merged), 5's is a 0 (radius 5). Fakes 0.5, 7 (within 5 of 5) and
  # 0 are inside; -1 is 1 from the 0s and 6 from 5: outside.
  precision, _ = precision_recall(_column([0, 0, 0, 5]), _column([0.5, -1, 7, 0]), k=2)
  np.testing.assert_allclose(precision, 3 / 4, rtol=1e-6)


def test_precision_recall_identical_and_distant_sets():
  reals = jax.random.normal(jax.random.PRNGKey(0), (50, 2))
  np.testing.assert_allclose(precision_recall(reals, reals), (1.0, 1.0))
  np.testing.assert_allclose(precision_recall(reals, reals + 100.0), (0.0, 0.0))


def test_precision_recall_half_the_fakes_inside_one_mode_dropped():
  # Reals: two clusters 50 apart. Fakes: copies of the first cluster, and as many points
  # far from both. Half the fakes are realistic; the fakes reach only the first cluster.
  noise = jax.random.normal(jax.random.PRNGKey(0), (64, 2))
  reals = noise.at[32:].add(50.0)
  fakes = jnp.concatenate([reals[:32], reals[:32] + 100.0])
  np.testing.assert_allclose(precision_recall(reals, fakes), (0.5, 0.5))


def test_precision_recall_do_not_depend_on_the_chunk_size():
  reals = jax.random.normal(jax.random.PRNGKey(0), (50, 8))
  fakes = 1.2 * jax.random.normal(jax.random.PRNGKey(1), (37, 8)) + 0.3
  whole = precision_recall(reals, fakes)
  chunked = precision_recall(reals, fakes, chunk_size=16)  # 50 = 3 * 16 + 2
  np.testing.assert_array_equal(chunked, whole)  # shares of counts: no rounding to differ by
  assert 0.0 < whole[0] < 1.0 and 0.0 < whole[1] < 1.0  # a case that tests something


def _confident(classes, num_classes):
  return 50.0 * jax.nn.one_hot(jnp.array(classes), num_classes)


def test_inception_score_extremes():
  # Confident and spread evenly: KL(one-hot || uniform) = log K, IS = K.
  np.testing.assert_allclose(inception_score(_confident(list(range(10)) * 3, 10)), 10.0,
                             rtol=1e-5)
  collapsed = _confident([3] * 30, 10)
  np.testing.assert_allclose(inception_score(collapsed), 1.0, rtol=1e-6)
  np.testing.assert_allclose(inception_score(jnp.zeros((30, 10))), 1.0, rtol=1e-6)  # uniform


def test_inception_score_hand_computed():
  # p(y|x) = (3/4, 1/4) and (1/4, 3/4): p(y) = (1/2, 1/2), each KL = 3/4 log(3/2) + 1/4 log(1/2).
  logits = jnp.log(jnp.array([[0.75, 0.25], [0.25, 0.75]]))
  expected = math.exp(0.75 * math.log(1.5) + 0.25 * math.log(0.5))  # = 1.1397
  np.testing.assert_allclose(inception_score(logits), expected, rtol=1e-6)


def test_split_inception_score_takes_consecutive_splits_each_against_its_own_marginal():
  # 10 samples in 3 splits of [0, 3), [3, 6), [6, 10) (i * N // 3): two spread confidently
  # over 3 classes (IS 3), one over 4 classes (IS 4), though all 10 samples cover 4 classes.
  logits = _confident([0, 1, 2, 0, 1, 2, 0, 1, 2, 3], 4)
  mean, std = metrics.split_inception_score(logits, num_splits=3)
  np.testing.assert_allclose(mean, (3 + 3 + 4) / 3, rtol=1e-5)
  np.testing.assert_allclose(std, np.std([3.0, 3.0, 4.0]), rtol=1e-4)  # ddof 0, as np.std
  # One split: the plain score of all samples.
  np.testing.assert_allclose(metrics.split_inception_score(logits, 1)[0],
                             inception_score(logits), rtol=1e-6)


def test_inception_score_is_finite_for_saturated_logits():
  assert np.isfinite(inception_score(jnp.array([[1e9, -1e9], [-1e9, 1e9]])))


def test_classes_covered():
  assert classes_covered(_confident(list(range(10)) * 3, 10)) == 10
  assert classes_covered(_confident([3] * 30, 10)) == 1
  # 1000 samples, 10 classes: the default needs 0.1 * 1000 / 10 = 10 samples per class.
  logits = _confident([0] * 10 + [1] * 9 + [2] * 981, 10)
  assert classes_covered(logits) == 2  # classes 0 and 2; class 1 is one sample short
  assert classes_covered(logits, min_share=0.0) == 3  # at least one sample


def test_mode_coverage_samples_at_the_centers():
  for name in ('ring8', 'grid25'):
    centers, std = input_pipeline.toy_modes(name)
    samples = jnp.tile(jnp.float32(centers), (100, 1))
    result = mode_coverage(samples, centers, std)
    assert result.modes_covered == len(centers), name
    np.testing.assert_allclose(result.high_quality_share, 1.0)


def test_mode_coverage_collapsed_and_distant_samples():
  centers, std = input_pipeline.toy_modes('grid25')
  collapsed = mode_coverage(jnp.tile(jnp.float32(centers[7]), (2500, 1)), centers, std)
  assert collapsed.modes_covered == 1
  np.testing.assert_allclose(collapsed.high_quality_share, 1.0)
  distant = mode_coverage(jnp.float32(centers) + 100.0, centers, std)
  assert distant.modes_covered == 0
  np.testing.assert_allclose(distant.high_quality_share, 0.0)


def test_mode_coverage_three_std_boundary():
  centers, std = input_pipeline.toy_modes('ring8')  # std 0.02, neighbours 1.53 apart
  direction = np.array([0.6, 0.8])  # a unit vector
  samples = jnp.float32(np.stack([centers[0] + 2.9 * std * direction,
                                  centers[1] + 3.1 * std * direction]))
  result = mode_coverage(samples, centers, std)
  assert result.modes_covered == 1
  np.testing.assert_allclose(result.high_quality_share, 0.5)


def test_mode_coverage_min_share():
  centers, std = input_pipeline.toy_modes('grid25')
  counts = np.zeros(25, int)
  counts[:3] = 20, 19, 2461  # 2500 samples, as in VEEGAN and PacGAN
  samples = jnp.float32(np.repeat(centers, counts, axis=0))
  assert mode_coverage(samples, centers, std).modes_covered == 3  # at least one sample
  assert mode_coverage(samples, centers, std, min_share=0.008).modes_covered == 2  # 20 of 2500


def test_class_faithfulness_hand_computed():
  # Argmaxes 0, 1, 1, 2, 2 for asked classes 0, 0, 1, 2, 2 of 4: class 0 half right, 1 and 2
  # right, class 3 never asked for.
  logits = jnp.eye(4)[jnp.array([0, 1, 1, 2, 2])]
  overall, per_class = metrics.class_faithfulness(logits, jnp.array([0, 0, 1, 2, 2]), 4)
  assert float(overall) == pytest.approx(0.8)
  np.testing.assert_allclose(per_class[:3], [0.5, 1.0, 1.0])
  assert np.isnan(per_class[3])
