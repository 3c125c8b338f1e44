"""The training state: one pytree of arrays, and the functions that make and use it.

Modules and optimizers stay outside the state (they are code, not data): the step
factory and the loaders close over them. Everything in `GANState` is an array, so
checkpointing it is one orbax call and its abstract shape (`jax.eval_shape`) is the
restore target.
"""
import functools
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from gan_jax import growth
from gan_jax.errors import unknown_name_error


PyTree = Any


@flax.struct.dataclass
class GANState:
  step: jax.Array  # generator updates done
  key: jax.Array  # raw uint32 PRNG key; folded with the step, never split, so devices agree
  g_params: PyTree
  d_params: PyTree
  g_opt_state: PyTree
  d_opt_state: PyTree
  g_batch_stats: PyTree  # the generator's batch norm running averages
  d_batch_stats: PyTree  # the discriminator's spectral norm power-iteration vectors
  # An exponential moving average of the generator's parameters and batch statistics
  # (config.g_ema_decay > 0; else empty): what sampling and evaluation use by default.
  g_ema_params: PyTree = flax.struct.field(default_factory=dict)
  g_ema_batch_stats: PyTree = flax.struct.field(default_factory=dict)
  # A growing model's stage and fade-in alpha in its last step (growth.py; else empty).
  growth: PyTree = flax.struct.field(default_factory=dict)


LR_SCHEDULES = ('constant', 'linear', 'cosine')


def learning_rate_schedule(rate: float, schedule: str, decay_steps: int) -> optax.ScalarOrSchedule:
  """`rate` held ('constant'), or decayed to 0 over `decay_steps` updates ('linear', 'cosine').

  Decay is common in long runs; in our 15-minute CPU runs it hurt (README "What mattered":
  a linear decay stalled at FID 97 where the constant rate reached 80), hence 'constant'.
  """
  if schedule == 'constant':
    return rate
  if schedule == 'linear':
    return optax.linear_schedule(rate, 0.0, decay_steps)
  if schedule == 'cosine':
    return optax.cosine_decay_schedule(rate, decay_steps)
  raise unknown_name_error('learning-rate schedule', schedule, LR_SCHEDULES)


def create_optimizers(config: ml_collections.ConfigDict, learning_rate_scale: float = 1.0
                      ) -> tuple[optax.GradientTransformation, ...]:
  """Adam for each network, with its own learning rate (TTUR: Heusel et al., 2017).

  Both rates follow config.lr_schedule over the run's config.num_steps generator updates
  (the discriminator's over its n_critic times as many). `learning_rate_scale` multiplies
  both (divergence rollbacks lower them); the scale is not in Adam's state, so the state
  fits whatever the scale.
  """
  updates = {'g_optimizer': config.num_steps, 'd_optimizer': config.num_steps * config.n_critic}
  return tuple(
      optax.adam(learning_rate_schedule(learning_rate_scale * config[name].learning_rate,
                                        config.lr_schedule, steps),
                 b1=config[name].b1, b2=config[name].b2)
      for name, steps in updates.items())


def create_state(config: ml_collections.ConfigDict, generator: nn.Module,
                 discriminator: nn.Module, g_tx: optax.GradientTransformation,
                 d_tx: optax.GradientTransformation, data_shape: tuple[int, ...]) -> GANState:
  """Initialises both networks and their optimizers from config.seed."""
  g_key, d_key, train_key = jax.random.split(jax.random.PRNGKey(config.seed), 3)
  labels = jnp.zeros((1,), jnp.int32) if config.model.conditional else None
  g_vars = generator.init(g_key, jnp.zeros((1, config.model.latent_dim)), labels, train=False)
  d_vars = discriminator.init(d_key, jnp.zeros((1,) + tuple(data_shape)), labels, train=False)
  g_batch_stats = g_vars.get('batch_stats', {})
  ema = config.g_ema_decay > 0
  return GANState(
      step=jnp.zeros((), jnp.int32), key=train_key,
      g_params=g_vars['params'], d_params=d_vars['params'],
      g_opt_state=g_tx.init(g_vars['params']), d_opt_state=d_tx.init(d_vars['params']),
      g_batch_stats=g_batch_stats, d_batch_stats=d_vars.get('batch_stats', {}),
      g_ema_params=g_vars['params'] if ema else {}, g_ema_batch_stats=g_batch_stats if ema else {},
      growth=growth.initial_state(config))


def update_ema(state: GANState, decay: float, start_step: int) -> GANState:
  """Moves the generator's EMA towards its current parameters and batch statistics.

  Until `start_step` the average is a copy (early weights are far from good ones and would
  linger in it), then ema <- decay * ema + (1 - decay) * current, as in Karras et al.
  (2018) and BigGAN. Batch statistics are averaged too, so they match the averaged weights.
  """
  if not state.g_ema_params:
    return state
  step_size = 1.0 - jnp.where(state.step <= start_step, 0.0, decay)
  return state.replace(
      g_ema_params=optax.incremental_update(state.g_params, state.g_ema_params, step_size),
      g_ema_batch_stats=optax.incremental_update(state.g_batch_stats, state.g_ema_batch_stats,
                                                 step_size))


def init_state(config: ml_collections.ConfigDict, mesh: Mesh, generator: nn.Module,
               discriminator: nn.Module, g_tx: optax.GradientTransformation,
               d_tx: optax.GradientTransformation, data_shape: tuple[int, ...]) -> GANState:
  """`create_state`, computed once and replicated on every device of `mesh`.

  On CPU it compiles without XLA's backend optimizations: they take seconds (most of
  a small run's start-up, 7 of 9 s for dcgan64) to save milliseconds of a program
  that runs once.
  """
  create = jax.jit(lambda: create_state(config, generator, discriminator, g_tx, d_tx, data_shape),
                   out_shardings=NamedSharding(mesh, P()))
  options = {'xla_backend_optimization_level': 0} if jax.default_backend() == 'cpu' else {}
  return create.lower().compile(options)()


def generator_variables(state: GANState, ema: bool = True) -> dict[str, PyTree]:
  """G's variables to sample with: the EMA's if the state keeps one and `ema`, else the raw
  weights'."""
  if ema and state.g_ema_params:
    return {'params': state.g_ema_params, 'batch_stats': state.g_ema_batch_stats}
  return {'params': state.g_params, 'batch_stats': state.g_batch_stats}


def generate(generator: nn.Module, state: GANState, z: jax.Array, labels: jax.Array | None = None,
             ema: bool = True, **options: Any) -> jax.Array:
  """Samples G(z, labels) as at test time: batch norm uses its running averages.

  `labels`: the classes of a conditional generator (None for others). With `ema` (the
  default) and an EMA in the state, the averaged generator makes the samples. A growing
  model samples at the resolution it trained at last, upscaled to the data's side.
  `options` are the generator's own sampling keywords (StyleGAN2's `truncation_psi`); its
  noise inputs draw from a fixed key, so the same latents give the same images.
  """
  apply = functools.partial(generator.apply, generator_variables(state, ema), z, labels,
                            train=False, rngs={'noise': jax.random.PRNGKey(0)}, **options)
  if state.growth:  # at the stage and alpha of the state's last step
    return growth.generate_at_stage(apply, state.growth, generator.num_stages)
  return apply()
