"""The generator's exponential moving average: its arithmetic, its use, its checkpoints."""
import dataclasses

import grain
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

import pytest

from gan_jax import (checkpoints, configs, evaluate, input_pipeline, models, sample, train,
                     validation)
from gan_jax.errors import UserError
from gan_jax.state import GANState, ema_decay, generate, update_ema
from test_train import _one_step, _toy_config, assert_trees_equal


def _state(step, params, ema):
  return GANState(step=jnp.asarray(step), key=None, g_params={'w': jnp.asarray(params)},
                  d_params={}, g_opt_state={}, d_opt_state={},
                  g_batch_stats={'m': jnp.asarray(params)}, d_batch_stats={},
                  g_ema_params={'w': jnp.asarray(ema)},
                  g_ema_batch_stats={'m': jnp.asarray(ema)})


def test_ema_copies_until_its_start_then_averages():
  # Up to the start step the average is a copy of the weights...
  copied = update_ema(_state(step=10, params=3.0, ema=1.0), decay=0.9, start_step=10)
  assert float(copied.g_ema_params['w']) == 3.0
  # ... then 0.9 * 1 + 0.1 * 3 = 1.2, the batch statistics alike.
  averaged = update_ema(_state(step=11, params=3.0, ema=1.0), decay=0.9, start_step=10)
  np.testing.assert_allclose(averaged.g_ema_params['w'], 1.2, rtol=1e-6)
  np.testing.assert_allclose(averaged.g_ema_batch_stats['m'], 1.2, rtol=1e-6)
  assert float(averaged.g_params['w']) == 3.0  # the weights themselves are untouched


def test_ema_can_copy_the_batch_statistics():
  # StyleGAN2's reference copies G's buffers (w_avg) into its EMA and averages the weights.
  copied = update_ema(_state(step=11, params=3.0, ema=1.0), decay=0.9, start_step=10,
                      copy_batch_stats=True)
  np.testing.assert_allclose(copied.g_ema_params['w'], 1.2, rtol=1e-6)
  assert float(copied.g_ema_batch_stats['m']) == 3.0


def test_ema_decay_from_a_half_life_in_images():
  config = configs.default()
  config.g_ema_decay = 0.999
  assert ema_decay(config, 5, 64) == 0.999  # per step, as before g_ema_kimg
  config.g_ema_decay, config.g_ema_kimg = 0.0, 500.0
  # 500,000 images at 64 a step: 7,812.5 steps halve the weight of the past,
  # 2 ** (-1 / 7812.5) = exp(-0.693147 / 7812.5) = 0.99991128 per step.
  assert ema_decay(config, 5, 64) == pytest.approx(0.99991128, abs=1e-8)
  config.g_ema_rampup = 0.05
  assert float(ema_decay(config, 1, 64)) == 0.0  # nothing shown yet: a copy
  # After 100 steps (6,400 images) the half-life is 5% of them, 320 images: 0.5 ** 0.2.
  assert float(ema_decay(config, 101, 64)) == pytest.approx(0.87055056, rel=1e-6)
  # From 10,000,000 images on (156,250 steps) the 500 kimg hold again.
  assert float(ema_decay(config, 200_000, 64)) == pytest.approx(0.99991128, abs=1e-7)


@pytest.mark.parametrize('fields,message', [
    ({'g_ema_decay': 0.999, 'g_ema_kimg': 10.0}, 'both set'),
    ({'g_ema_rampup': 0.05}, 'ramps up a half-life'),
])
def test_ema_fields_are_one_decay_or_the_other(fields, message):
  config = configs.default()
  config.update(fields)
  with pytest.raises(UserError, match=message):
    validation.validate(config, 1)


def test_train_step_averages_and_sampling_uses_the_average():
  config = _toy_config(g_ema_decay=0.5, g_ema_start=0)
  old, new, _ = _one_step(config)
  # One step from the initial weights: ema = 0.5 * initial + 0.5 * updated.
  jax.tree.map(lambda e, o, n: np.testing.assert_allclose(e, 0.5 * o + 0.5 * n, rtol=1e-6),
               new.g_ema_params, old.g_params, new.g_params)
  generator, _ = models.build(config, (2,))
  z = jnp.ones((3, config.model.latent_dim))
  ema_only = new.replace(g_params=new.g_ema_params)
  # Exact: the same program on the same weights.
  np.testing.assert_array_equal(generate(generator, new, z), generate(generator, ema_only, z))
  assert not np.array_equal(generate(generator, new, z), generate(generator, new, z, ema=False))


def test_without_ema_the_state_holds_none():
  _, state, _ = _one_step(_toy_config())
  assert state.g_ema_params == {} and state.g_ema_batch_stats == {}


def test_checkpoint_from_before_the_ema_fields_loads(tmp_path):
  config = _toy_config()
  state = train.train_and_evaluate(config, str(tmp_path / 'run'))
  # The same checkpoint as an older version wrote it: GANState without the EMA fields.
  manager = checkpoints.create_manager(str(tmp_path / 'old'), 1)
  older = {field.name: getattr(state, field.name) for field in dataclasses.fields(state)
           if not field.name.startswith('g_ema')}
  iterator = iter(input_pipeline.create_dataset(config))
  manager.save(2, args=ocp.args.Composite(state=ocp.args.StandardSave(older),
                                          data=grain.checkpoint.CheckpointSave(iterator),
                                          meta=ocp.args.JsonSave({'rollbacks': 0})))
  manager.wait_until_finished()
  checkpoints.write_config(str(tmp_path / 'old'), config)
  loaded = checkpoints.load(str(tmp_path / 'old'))
  assert_trees_equal(jax.device_get(loaded.state), jax.device_get(state))
  # And training resumes from it, its seconds of training unknown, so 0.
  config.num_steps = 3
  assert int(train.train_and_evaluate(config, str(tmp_path / 'old')).step) == 3


def test_evaluation_scores_the_average_by_default_and_the_raw_weights_when_asked(tmp_path):
  train.train_and_evaluate(_toy_config(g_ema_decay=0.5, num_grid_samples=16), str(tmp_path))
  loaded = checkpoints.load(str(tmp_path))
  averaged = sample.sample(loaded, 50, seed=0)
  # Exact: the same program on the same weights.
  np.testing.assert_array_equal(averaged, sample.sample(loaded, 50, seed=0, ema=True))
  assert not np.array_equal(averaged, sample.sample(loaded, 50, seed=0, ema=False))
  assert evaluate.evaluate_checkpoint(str(tmp_path), num_samples=50)['ema'] is True
  assert evaluate.evaluate_checkpoint(str(tmp_path), num_samples=50, ema=False)['ema'] is False
