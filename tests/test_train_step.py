"""What configs add to the train step: lazy R1, DRAGAN, DiffAugment, orthogonal regularisation."""
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from gan_jax import configs, input_pipeline, models, train_step
from gan_jax.state import create_optimizers, init_state

# Each test compiles steps to run one or two of them.
pytestmark = pytest.mark.usefixtures('fast_compile')

_EXPERIMENTS = os.path.join(os.path.dirname(__file__), '..', 'experiments')


def _toy_config(**overrides):
  config = configs.toy('ring8')
  config.update_from_flattened_dict({'batch_size': 16, 'model.width': 16, 'model.mlp_layers': 1,
                                     **overrides})
  return config


def _image_config(**overrides):
  config = configs.default()
  config.update_from_flattened_dict({'batch_size': 4, 'model.width': 8, 'model.latent_dim': 8,
                                     'data.image_size': 16, **overrides})
  return config


def _step(config, regularize=(), batch=None, networks=None):
  """One train step from a fresh state: (old state, new state, metrics). `networks`: a (G, D)
  pair for `batch`'s examples instead of config's."""
  mesh = Mesh(jax.devices()[:1], ('data',))
  data_shape = input_pipeline.data_shape(config) if batch is None else batch['data'].shape[2:]
  generator, discriminator = networks or models.build(config, data_shape)
  g_tx, d_tx = create_optimizers(config)
  state = init_state(config, mesh, generator, discriminator, g_tx, d_tx, data_shape)
  old = jax.device_get(state)
  if batch is None:
    batch = next(iter(input_pipeline.create_dataset(config)))
  batch = jax.device_put(batch, NamedSharding(mesh, P(None, 'data')))
  step = train_step.make_train_step(config, mesh, generator, discriminator, g_tx, d_tx,
                                    regularize=regularize)
  new, metrics = step(state, batch)
  return old, jax.device_get(new), jax.device_get(metrics)


def _images(config):
  """A fixed batch of random images and labels for `config`."""
  rng = np.random.default_rng(0)
  shape = (config.n_critic, config.batch_size) + input_pipeline.data_shape(config)
  return {'data': rng.uniform(-1, 1, shape).astype(np.float32),
          'label': rng.integers(0, 10, shape[:2]).astype(np.int32)}


def _changed(a, b):
  return any(not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _assert_close(a, b, **tolerance):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, **tolerance), a, b)


def test_lazy_regularizers_are_due_every_k_steps_only_when_asked():
  config = _toy_config(r1_gamma=1.0, r1_every=4)
  assert [s for s in range(1, 13) if train_step.lazy_regularizers_due(config, s)] == [4, 8, 12]
  assert not any(train_step.lazy_regularizers_due(_toy_config(r1_gamma=1.0), s)
                 for s in range(1, 5))  # r1_every=1: in every step, no separate step
  assert not train_step.lazy_regularizers_due(_toy_config(r1_every=4), 4)  # gamma 0: no R1
  both = _toy_config(r1_gamma=1.0, r1_every=4, pl_weight=2.0, pl_every=2)
  assert [train_step.lazy_regularizers_due(both, s) for s in (1, 2, 4)] == [
      (), ('path_length',), ('r1', 'path_length')]


def test_lazy_r1_step_is_r1_weighted_k_times_and_other_steps_skip_it():
  lazy, every_step, none = (_toy_config(r1_gamma=g, r1_every=k)
                            for g, k in ((0.5, 4), (2.0, 1), (0.0, 1)))
  _, regularized, metrics = _step(lazy, regularize=('r1',))
  _, weighted, weighted_metrics = _step(every_step)
  _assert_close(regularized.d_params, weighted.d_params, rtol=1e-5, atol=1e-7)
  assert metrics['r1_penalty'] == pytest.approx(weighted_metrics['r1_penalty'], rel=1e-5)
  assert metrics['r1_penalty'] > 0
  _, skipped, skipped_metrics = _step(lazy)
  _, plain, _ = _step(none)
  # Exact: a step without a due regulariser traces the same program as one without R1.
  _assert_close(skipped.d_params, plain.d_params, rtol=0, atol=0)
  assert 'r1_penalty' not in skipped_metrics


def test_lazy_r1_with_n_critic_weighs_the_last_update_for_all():
  _, state, metrics = _step(_toy_config(r1_gamma=1.0, r1_every=2, n_critic=3), regularize=('r1',))
  assert int(state.d_opt_state[0].count) == 3
  assert metrics['r1_penalty'] > 0  # reported for the one update that computes it


def test_penalties_diffaugment_and_orthogonal_regularisation_train_images():
  config = _image_config(dragan_penalty=10.0, r1_gamma=1.0, diffaugment='color,translation,cutout',
                         orthogonal_reg=1e-4, loss='hinge')
  old, new, metrics = _step(config, batch=_images(config))
  assert all(np.isfinite(value) for value in metrics.values())
  for name in ('dragan_penalty', 'r1_penalty'):
    assert metrics[name] >= 0
  assert metrics['orthogonal_penalty'] > 0  # random kernels are not orthogonal
  for name in ('g_params', 'd_params'):
    assert _changed(getattr(old, name), getattr(new, name))


def test_orthogonal_regularisation_moves_g_towards_orthogonal_weights():
  config = _image_config(orthogonal_reg=1.0)
  batch = _images(config)
  _, regularized, metrics = _step(config, batch=batch)
  _, plain, _ = _step(_image_config(), batch=batch)
  from gan_jax import losses  # pylint: disable=import-outside-toplevel
  penalty = lambda params: float(losses.orthogonal_penalty(
      train_step._orthogonal_targets(params)))  # pylint: disable=protected-access
  assert penalty(regularized.g_params) < penalty(plain.g_params) < metrics['orthogonal_penalty']


def test_orthogonal_targets_skip_embeddings():
  params = {'Embed_0': {'embedding': jnp.ones((10, 4))}, 'Dense_0': {'kernel': jnp.ones((4, 3)),
                                                                       'bias': jnp.ones(3)}}
  targets = train_step._orthogonal_targets(params)  # pylint: disable=protected-access
  assert sorted(t.shape for t in targets) == [(3,), (4, 3)]


def test_diffaugment_changes_what_d_sees():
  config = _image_config(loss='hinge')
  batch = _images(config)
  _, plain, plain_metrics = _step(config, batch=batch)
  _, augmented, metrics = _step(_image_config(loss='hinge', diffaugment='translation'),
                                batch=batch)
  assert metrics['d_real_logit'] != plain_metrics['d_real_logit']
  assert _changed(plain.d_params, augmented.d_params)


class _TinyGenerator(nn.Module):
  """2x2 grey images from z."""

  @nn.compact
  def __call__(self, z, labels=None, train=True):
    return jnp.tanh(nn.Dense(4)(z)).reshape(-1, 2, 2, 1)


class _PowerCritic(nn.Module):
  """D(y) = sum(y ** power) / power per image: its gradient, y ** (power - 1), is known by hand."""
  power: int

  @nn.compact
  def __call__(self, x, labels=None, train=True):
    scale = self.param('scale', nn.initializers.ones, ())  # 1: something for D's optimizer
    return scale * jnp.sum(x ** self.power, axis=(1, 2, 3)) / self.power


def _cutout_step(critic, **penalties):
  """Metrics of one step on a batch of four 2x2 grey images, DiffAugment's cutout before D.

  Cutout on 2x2 images zeroes exactly one pixel of each (a half-size square, 1x1): D sees
  m * x for a 0/1 mask m with three ones, drawn per image.
  """
  config = _image_config(diffaugment='cutout', loss='wasserstein', **penalties)
  batch = {'data': np.random.default_rng(0).uniform(-1, 1, (1, 4, 2, 2, 1)).astype(np.float32),
           'label': np.zeros((1, 4), np.int32)}
  return _step(config, batch=batch, networks=(_TinyGenerator(), critic))[2]


def test_penalties_differentiate_d_at_the_image_before_augmentation():
  # D(y) = sum(y): D(cutout(x)) = sum(m * x), of gradient m in x, squared norm 3, at real
  # images and interpolates alike. D's gradient at the augmented image (all ones) would
  # give 4: R1 4 and WGAN-GP/DRAGAN (2 - 1)^2 = 1.
  metrics = _cutout_step(_PowerCritic(1), r1_gamma=1.0, gradient_penalty=1.0,
                         dragan_penalty=1.0)
  assert metrics['r1_penalty'] == pytest.approx(3.0, rel=1e-6)
  for name in ('gradient_penalty', 'dragan_penalty'):
    assert metrics[name] == pytest.approx((np.sqrt(3.0) - 1.0) ** 2, rel=1e-5)


def test_r1_uses_the_augmentation_draw_of_ds_loss_on_real_images():
  # D(y) = sum(y^2) / 2: D(cutout(x)) = sum((m x)^2) / 2, of gradient m x (m^2 = m), so
  # R1 = mean sum((m x)^2) = 2 mean D(cutout(x)): twice the real logits of D's loss exactly
  # when both use the same masks (as the reference differentiates the loss's own logits).
  metrics = _cutout_step(_PowerCritic(2), r1_gamma=1.0)
  assert metrics['r1_penalty'] == pytest.approx(2 * metrics['d_real_logit'], rel=1e-5)
