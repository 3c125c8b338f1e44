"""The optimizers' learning-rate schedules (state.create_optimizers)."""
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gan_jax import configs, state, validation
from gan_jax.errors import UserError


def _updates(tx: optax.GradientTransformation, steps: int) -> list[float]:
  """The updates `tx` makes to one parameter whose gradient is always 1.

  Adam's bias-corrected m / sqrt(v) is then exactly 1 (up to eps), so each update is minus
  the learning rate of its step.
  """
  params = jnp.zeros(())
  opt_state, updates = tx.init(params), []
  for _ in range(steps):
    update, opt_state = tx.update(jnp.ones(()), opt_state, params)
    updates.append(float(update))
  return updates


@pytest.mark.parametrize('schedule, expected', [
    ('constant', [1.0, 1.0, 1.0, 1.0]),
    ('linear', [1.0, 0.75, 0.5, 0.25]),
    ('cosine', [1.0, (1 + np.cos(np.pi / 4)) / 2, 0.5, (1 + np.cos(3 * np.pi / 4)) / 2]),
])
def test_generator_learning_rate_follows_the_schedule_to_zero_at_num_steps(schedule, expected):
  config = configs.default()
  config.num_steps, config.lr_schedule = 4, schedule
  config.g_optimizer.learning_rate = 1e-2
  g_tx, _ = state.create_optimizers(config)
  np.testing.assert_allclose(_updates(g_tx, 4), -1e-2 * np.array(expected), rtol=1e-5)


def test_discriminator_decays_over_n_critic_times_as_many_updates_and_rollbacks_scale_both():
  config = configs.default()
  config.num_steps, config.n_critic, config.lr_schedule = 2, 2, 'linear'
  config.d_optimizer.learning_rate = 1e-2
  _, d_tx = state.create_optimizers(config, learning_rate_scale=0.5)
  np.testing.assert_allclose(_updates(d_tx, 4), -0.5e-2 * np.array([1.0, 0.75, 0.5, 0.25]),
                             rtol=1e-5)


def test_unknown_schedule_is_refused_before_anything_compiles():
  config = configs.default()
  config.lr_schedule = 'step'
  with pytest.raises(UserError, match="Unknown config.lr_schedule 'step'. Valid: constant, cosine, linear"):
    validation.validate(config, num_devices=1)
