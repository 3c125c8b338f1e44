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
  # (`keeps_ema(config)`; else empty): what sampling and evaluation use by default.
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


def reset_adam(opt_state: PyTree, where: jax.Array) -> PyTree:
  """`create_optimizers`' state with Adam's moments and step count set back to their initial
  zeros where `where` (a traced bool) holds; the learning-rate schedule's count is kept."""
  def fresh(node):
    if not isinstance(node, optax.ScaleByAdamState):
      return node
    return jax.tree.map(lambda x: jnp.where(where, jnp.zeros_like(x), x), node)
  is_adam = lambda node: isinstance(node, optax.ScaleByAdamState)
  return jax.tree.map(fresh, opt_state, is_leaf=is_adam)


def create_state(config: ml_collections.ConfigDict, generator: nn.Module,
                 discriminator: nn.Module, g_tx: optax.GradientTransformation,
                 d_tx: optax.GradientTransformation, data_shape: tuple[int, ...]) -> GANState:
  """Initialises both networks and their optimizers from config.seed."""
  g_key, d_key, train_key = jax.random.split(jax.random.PRNGKey(config.seed), 3)
  labels = jnp.zeros((1,), jnp.int32) if config.model.conditional else None
  g_vars = generator.init(g_key, jnp.zeros((1, config.model.latent_dim)), labels, train=False)
  d_vars = discriminator.init(d_key, jnp.zeros((1,) + tuple(data_shape)), labels, train=False)
  g_batch_stats = g_vars.get('batch_stats', {})
  ema = keeps_ema(config)
  return GANState(
      step=jnp.zeros((), jnp.int32), key=train_key,
      g_params=g_vars['params'], d_params=d_vars['params'],
      g_opt_state=g_tx.init(g_vars['params']), d_opt_state=d_tx.init(d_vars['params']),
      g_batch_stats=g_batch_stats, d_batch_stats=d_vars.get('batch_stats', {}),
      g_ema_params=g_vars['params'] if ema else {}, g_ema_batch_stats=g_batch_stats if ema else {},
      growth=growth.initial_state(config))


def keeps_ema(config: ml_collections.ConfigDict) -> bool:
  """Whether a run of `config` keeps an EMA of its generator (`ema_decay`)."""
  return config.g_ema_decay > 0 or config.g_ema_kimg > 0


def ema_decay(config: ml_collections.ConfigDict, step: int | jax.Array,
              batch_size: int) -> float | jax.Array:
  """The generator EMA's decay in generator update `step` (counted from 1), of `batch_size`
  images: config.g_ema_decay, or with config.g_ema_kimg > 0 StyleGAN2's (stylegan2-ada-pytorch,
  training/training_loop.py): a half-life of g_ema_kimg thousand images,
  0.5 ** (batch_size / (g_ema_kimg * 1000)), capped with g_ema_rampup > 0 at g_ema_rampup
  times the images shown before this update (a copy in the first).
  """
  if not config.g_ema_kimg:
    return config.g_ema_decay
  half_life = config.g_ema_kimg * 1000
  if config.g_ema_rampup:
    half_life = jnp.minimum(half_life, (step - 1) * batch_size * config.g_ema_rampup)
  return 0.5 ** (batch_size / jnp.maximum(half_life, 1e-8))


def update_ema(state: GANState, decay: float | jax.Array, start_step: int,
               copy_batch_stats: bool = False) -> GANState:
  """Moves the generator's EMA towards its current parameters and batch statistics.

  Until `start_step` the average is a copy (early weights are far from good ones and would
  linger in it), then ema <- decay * ema + (1 - decay) * current, as in Karras et al.
  (2018) and BigGAN. Batch statistics are averaged too, so they match the averaged weights,
  or with `copy_batch_stats` copied, as StyleGAN2's reference copies G's buffers (w_avg).
  """
  if not state.g_ema_params:
    return state
  step_size = 1.0 - jnp.where(state.step <= start_step, 0.0, decay)
  return state.replace(
      g_ema_params=optax.incremental_update(state.g_params, state.g_ema_params, step_size),
      g_ema_batch_stats=state.g_batch_stats if copy_batch_stats else optax.incremental_update(
          state.g_batch_stats, state.g_ema_batch_stats, step_size))


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


def apply_per_example(generator: nn.Module, variables: dict[str, PyTree], inputs: tuple,
                      noise_key: jax.Array, noise_indices: jax.Array, **kwargs: Any) -> jax.Array:
  """`generator.apply(variables, *inputs, **kwargs)` one example at a time (vmapped), example
  i's noise inputs (StyleGAN2's) drawing from `noise_key` folded with `noise_indices[i]`:
  a sample's noise is its own whatever batch it comes in, and examples given one index share
  it. `inputs` are batched on their first axis (None for absent labels)."""
  def one(inputs, index):
    return generator.apply(variables, *jax.tree.map(lambda x: x[None], inputs),
                           rngs={'noise': jax.random.fold_in(noise_key, index)}, **kwargs)[0]
  return jax.vmap(one)(inputs, noise_indices)


def generate(generator: nn.Module, state: GANState, z: jax.Array, labels: jax.Array | None = None,
             ema: bool = True, noise_key: jax.Array | None = None,
             noise_indices: jax.Array | None = None, **options: Any) -> jax.Array:
  """Samples G(z, labels) as at test time: batch norm uses its running averages.

  `labels`: the classes of a conditional generator (None for others). With `ema` (the
  default) and an EMA in the state, the averaged generator makes the samples. A growing
  model samples at the resolution it trained at last, upscaled to the data's side.
  `options` are the generator's own sampling keywords (StyleGAN2's `truncation_psi`). Noise
  inputs draw example i's noise from `noise_key` (default: key 0) and `noise_indices[i]`
  (default: i), as `apply_per_example`: the same latents and indices give the same images.
  """
  noise_key = jax.random.PRNGKey(0) if noise_key is None else noise_key
  noise_indices = jnp.arange(len(z)) if noise_indices is None else noise_indices
  apply = functools.partial(apply_per_example, generator, generator_variables(state, ema),
                            (z, labels), noise_key, noise_indices, train=False, **options)
  if state.growth:  # at the stage and alpha of the state's last step
    return growth.generate_at_stage(apply, state.growth, generator.num_stages)
  return apply()
