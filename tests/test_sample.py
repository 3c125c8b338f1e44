"""Which latents and labels sampling uses: classes spread evenly, one per grid row, truncation."""
import jax
import numpy as np
import pytest

from gan_jax import configs, models, sample
from gan_jax.errors import UserError


def test_spread_labels_give_each_class_an_equal_block():
  np.testing.assert_array_equal(sample.spread_labels(3, 6), [0, 0, 1, 1, 2, 2])
  assert np.bincount(sample.spread_labels(10, 10_000)).tolist() == [1000] * 10
  assert sample.spread_labels(0, 5) is None  # unconditional


def test_grid_has_one_class_per_row_when_the_samples_split_evenly():
  assert sample.grid_columns(10, 100) == 10
  labels = sample.spread_labels(10, 100).reshape(10, sample.grid_columns(10, 100))
  assert (labels == np.arange(10)[:, None]).all()
  assert sample.grid_columns(10, 64) is None and sample.grid_columns(0, 64) is None


def test_sample_labels_for_one_class_and_their_errors():
  config = configs.default()
  config.model.conditional = True
  np.testing.assert_array_equal(sample.sample_labels(config, 3, label=7), [7, 7, 7])
  with pytest.raises(UserError, match='0 to 9; got 10'):
    sample.sample_labels(config, 3, label=10)
  config.model.conditional = False
  assert sample.sample_labels(config, 3) is None
  with pytest.raises(UserError, match='unconditional'):
    sample.sample_labels(config, 3, label=1)


@pytest.mark.parametrize('threshold', [0.5, 2.0])
def test_truncation_keeps_every_latent_inside_the_threshold(threshold):
  z = np.asarray(models.sample_latents(jax.random.PRNGKey(0), (4000, 16), 'gaussian', threshold))
  assert np.abs(z).max() <= threshold
  # Truncation redraws, it does not clip: no pile-up at the threshold.
  assert np.mean(np.abs(z) > 0.99 * threshold) < 0.02
  assert z.std() < 1.0


def test_truncation_must_not_be_negative():
  with pytest.raises(UserError, match='truncation'):
    models.sample_latents(jax.random.PRNGKey(0), (2, 2), 'gaussian', -1.0)


@pytest.mark.parametrize('model, conditional, prior, options, said', [
    ('dcgan', False, 'gaussian', {}, 'untruncated latents'),
    ('dcgan', False, 'gaussian', dict(truncation=0.5), 'latents truncated to [-0.5, 0.5]'),
    ('dcgan', False, 'uniform', dict(truncation=0.5),
     'uniform latents, untruncated (--truncation applies to Gaussian ones)'),
    ('resnet', True, 'gaussian', {}, 'all 10 classes, evenly, untruncated latents'),
    ('biggan', True, 'gaussian', dict(label=3, truncation=2.0),
     'class 3 only, latents truncated to [-2, 2]'),
    ('stylegan2', False, 'gaussian', dict(truncation_psi=0.7),
     'untruncated latents, truncation_psi 0.7'),
    ('stylegan2', False, 'gaussian', {}, 'untruncated latents, truncation_psi 1 (w untruncated)'),
])
def test_sampling_is_described_as_applied(model, conditional, prior, options, said):
  config = configs.default()
  config.model.name, config.model.conditional, config.model.latent_prior = (model, conditional,
                                                                            prior)
  assert sample.describe_sampling(config, **options) == said
