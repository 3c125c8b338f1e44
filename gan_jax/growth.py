"""Progressive growing (Karras et al., 2018): the resolution a run trains at, step by step.

Training starts at 4x4 and doubles the side stage by stage up to the data's. Stage 0 trains
for config.growth.stable_images real images shown to D; every later stage first fades its
new blocks in, alpha rising linearly from 0 to 1 over config.growth.fade_images, then trains
stably for stable_images more; the last stage goes on to the end of the run. Each stage may
train with a batch of its own (config.growth.batch_sizes, the reference's minibatch_dict), so
a stage starts with the first update after its share of images, counted in the batches of the
stages before it. When a fade-in starts and when it ends, both networks' Adam starts afresh.
The schedule is a pure function of the step, so a resumed run lands at the same stage, alpha,
batch and optimizer reset; the state records stage and alpha (`GANState.growth`) for the logs
and for sampling a checkpoint as it was.

A growing model's generator takes `stage` (static: each stage compiles its own step, once)
and `alpha` (an array), and returns images at the data's side, its own upscaled by nearest
neighbour; its discriminator takes images at the stage's side and `alpha`.
"""
import functools
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections

from gan_jax.errors import UserError

GROWING_MODELS = ('progan',)
BASE_SIDE = 4  # every growing model starts at 4x4


def is_growing(config: ml_collections.ConfigDict) -> bool:
  return config.model.name in GROWING_MODELS


def num_stages(final_side: int) -> int:
  """4x4 and each doubling up to `final_side` (4 for 32x32)."""
  return int(math.log2(final_side // BASE_SIDE)) + 1


def side(stage: int) -> int:
  return BASE_SIDE << stage


def _stage_start(config: ml_collections.ConfigDict, stage: int) -> int:
  """Real images shown to D before `stage` starts."""
  if stage == 0:
    return 0
  return config.growth.stable_images + (stage - 1) * (config.growth.fade_images
                                                      + config.growth.stable_images)


def batch_size(config: ml_collections.ConfigDict, stage: int | None) -> int:
  """The global batch of an update at `stage`: config.growth.batch_sizes[stage] where set,
  else config.batch_size (and for a model that does not grow, stage None)."""
  sizes = config.growth.batch_sizes
  return sizes[stage] if stage is not None and sizes else config.batch_size


def largest_batch_size(config: ml_collections.ConfigDict) -> int:
  """The largest global batch any update of a run of `config` takes."""
  return max(config.growth.batch_sizes or [config.batch_size])


def check_batch_sizes(config: ml_collections.ConfigDict, final_side: int) -> None:
  """Raises UserError unless config.growth.batch_sizes is empty or holds a positive integer
  per stage of a growing model."""
  sizes = config.growth.batch_sizes
  if not sizes:
    return
  if not is_growing(config):
    raise UserError(f'config.growth.batch_sizes is for growing models ({", ".join(GROWING_MODELS)}'
                    f'), not {config.model.name}; leave it empty.')
  if not all(isinstance(size, int) and not isinstance(size, bool) and size > 0 for size in sizes):
    raise UserError(f'config.growth.batch_sizes must hold positive integers, got {sizes!r}.')
  if len(sizes) != num_stages(final_side):
    sides = ', '.join(str(side(stage)) for stage in range(num_stages(final_side)))
    raise UserError(f'config.growth.batch_sizes needs one batch per stage, '
                    f'{num_stages(final_side)} for {final_side}x{final_side} images (sides '
                    f'{sides}), got {len(sizes)}: {sizes!r}.')


def _images_per_step(config: ml_collections.ConfigDict, stage: int | None) -> int:
  return batch_size(config, stage) * config.n_critic  # n_critic real batches per update


def _stage_starts(config: ml_collections.ConfigDict, count: int) -> list[tuple[int, int]]:
  """(first update, real images D saw before it) of the first `count` stages: a stage starts
  with the first update after its share of images (as the reference counts cur_nimg)."""
  starts = [(0, 0)]
  for stage in range(1, count):
    step, images = starts[-1]
    per_step = _images_per_step(config, stage - 1)
    steps = -(-(_stage_start(config, stage) - images) // per_step)  # rounded up
    starts.append((step + steps, images + steps * per_step))
  return starts


def stage_at(config: ml_collections.ConfigDict, step: int, final_side: int) -> int | None:
  """The stage of the update after `step` generator updates; None for a model that does not
  grow."""
  if not is_growing(config):
    return None
  starts = _stage_starts(config, num_stages(final_side))
  return max(stage for stage, (first, _) in enumerate(starts) if step >= first)


def first_step(config: ml_collections.ConfigDict, stage: int | None) -> int:
  """The generator updates before `stage`'s first (0 for a model that does not grow)."""
  return 0 if stage is None else _stage_starts(config, stage + 1)[stage][0]


def images_before(config: ml_collections.ConfigDict, step: int, final_side: int) -> int:
  """Real images D saw in the first `step` updates: where the data of update `step` + 1
  start."""
  stage = stage_at(config, step, final_side)
  if stage is None:
    return step * _images_per_step(config, None)
  first, images = _stage_starts(config, stage + 1)[stage]
  return images + (step - first) * _images_per_step(config, stage)


def stages(config: ml_collections.ConfigDict, final_side: int) -> list[int | None]:
  """Every stage a run of `config` can be at ([None] for a model that does not grow)."""
  return list(range(num_stages(final_side))) if is_growing(config) else [None]


def _images_into_fade(config: ml_collections.ConfigDict, step: Any, stage: int) -> Any:
  """Real images D saw at `stage` before the update after `step`, counted from where the
  stage's fade-in starts (its first update may start a little past it)."""
  first, images = _stage_starts(config, stage + 1)[stage]
  # The stage's images added as one exact int: in float32, a running count past 2**24 rounds.
  return (step - first) * _images_per_step(config, stage) + (images - _stage_start(config, stage))


def alpha_at(config: ml_collections.ConfigDict, step: jax.Array, stage: int) -> jax.Array:
  """The fade-in's alpha in the update after `step` generator updates, at `stage`: rising
  from 0 to 1 over config.growth.fade_images (1 at stage 0 and once faded in)."""
  if stage == 0 or config.growth.fade_images == 0:
    return jnp.ones((), jnp.float32)
  faded = _images_into_fade(config, jnp.asarray(step, jnp.float32), stage)
  return jnp.clip(faded / config.growth.fade_images, 0.0, 1.0)


def _detail_level(config: ml_collections.ConfigDict, step: int, stage: int) -> int:
  """Twice the level of detail of the update after `step` at `stage`, counted up from 4x4:
  2 * stage once faded in, one less while fading, two less at alpha 0 (the previous stage's
  network). The reference's lod, negated, doubled and shifted: odd where its lod is not an
  integer."""
  if stage == 0:
    return 0
  faded = _images_into_fade(config, step, stage)
  if faded >= config.growth.fade_images:
    return 2 * stage
  return 2 * stage - (1 if faded else 2)


def adam_reset_steps(config: ml_collections.ConfigDict, stage: int) -> tuple[int, ...]:
  """The updates at `stage` (counted as the generator updates before them) that start both
  networks' Adam afresh: where the fade-in starts to weigh the new block and where it ends.

  As tkarras/progressive_growing_of_gans's train.py (reset_opt_for_new_lod), which resets
  both optimizers' state, moments and step count, whenever the floor or the ceiling of its
  level of detail changes: a new block's parameters would otherwise meet a long run's step
  count with zero second moments, and take steps of many times the learning rate. (With
  no stable phase, a fade-in ends at the next stage's first update, which that stage makes.)
  """
  if stage == 0:
    return ()  # a run starts afresh
  first, images = _stage_starts(config, stage + 1)[stage]
  per_step, overshoot = _images_per_step(config, stage), images - _stage_start(config, stage)
  faded_in = first + max(0, -(-(config.growth.fade_images - overshoot) // per_step))
  # The level can change only at the stage's first update, its first with alpha > 0 and its
  # first with alpha 1.
  candidates = {first, first + (0 if overshoot else 1), faded_in}
  level_before = lambda step: _detail_level(config, step - 1, stage if step > first else stage - 1)
  return tuple(sorted(step for step in candidates
                      if step > 0 and _detail_level(config, step, stage) != level_before(step)))


def adam_reset_due(config: ml_collections.ConfigDict, step: jax.Array, stage: int) -> jax.Array:
  """Whether the update after `step` generator updates at `stage` starts Adam afresh."""
  return functools.reduce(jnp.logical_or, [step == reset for reset in
                                           adam_reset_steps(config, stage)], jnp.bool_(False))


def initial_state(config: ml_collections.ConfigDict) -> dict[str, jax.Array]:
  """GANState.growth of a new run: stage 0, faded in; {} for a model that does not grow."""
  if not is_growing(config):
    return {}
  return {'stage': jnp.zeros((), jnp.int32), 'alpha': jnp.ones((), jnp.float32)}


def downscale(images: jax.Array, to_side: int) -> jax.Array:
  """[N, S, S, C] -> [N, to_side, to_side, C] by averaging blocks (ProGAN's 2x2 average
  pooling, repeated). It undoes `upscale`, values and gradients, up to the rounding of the
  block's sum."""
  factor = images.shape[1] // to_side
  if factor == 1:
    return images
  n, _, _, c = images.shape
  return images.reshape(n, to_side, factor, to_side, factor, c).mean(axis=(2, 4))


def upscale(images: jax.Array, to_side: int) -> jax.Array:
  """[N, s, s, C] -> [N, to_side, to_side, C] by nearest neighbour."""
  factor = to_side // images.shape[1]
  return jnp.repeat(jnp.repeat(images, factor, axis=1), factor, axis=2)


def fade(low: jax.Array, high: jax.Array, alpha: jax.Array) -> jax.Array:
  """The fade-in: exactly the old path's `low` at alpha 0 and the new block's `high` at 1."""
  alpha = alpha.astype(high.dtype)
  return (1 - alpha) * low + alpha * high


def real_at_stage(images: jax.Array, stage: int, alpha: jax.Array) -> jax.Array:
  """Real images as D sees them at `stage`: downscaled to its side and, during the fade-in,
  blended with their half-resolution version as G's output is."""
  current = downscale(images, side(stage))
  if stage == 0:
    return current
  return fade(upscale(downscale(current, side(stage - 1)), side(stage)), current, alpha)


def at_data_side(critic: Callable[[jax.Array], jax.Array], real: jax.Array, fake: jax.Array,
                 stage: int, data_side: int) -> tuple[Callable[[jax.Array], jax.Array], jax.Array,
                                                      jax.Array]:
  """`critic` (D at `stage`) and its real and fake batches as penalties on D's gradient take
  them: the images at the data's side (as G makes them), and D downscaling its input itself.

  So does the reference's D (tkarras/progressive_growing_of_gans, networks.py: every input
  goes in at the data's side, average-pooled to the stage's; loss.py differentiates WGAN-GP
  with respect to it). The block mean's gradient spreads each pixel's over k x k pixels, so
  the norm at the data's side is 1/k the stage's, k = data side / stage side: penalised at
  the stage's side, a 4x4 D of 32x32 data would be held to gradients 8 times too large.
  """
  up = lambda images: upscale(images, data_side)
  return lambda images: critic(downscale(images, side(stage))), up(real), up(fake)


def generate_at_stage(apply: Callable[..., jax.Array], growth_state: dict[str, jax.Array],
                      stages_count: int) -> jax.Array:
  """`apply(stage=s, alpha=a)` at the state's stage and alpha, which may be traced: one
  branch per stage, the one of the state's stage taken."""
  branches = [functools.partial(lambda alpha, s: apply(stage=s, alpha=alpha), s=stage)
              for stage in range(stages_count)]
  return jax.lax.switch(growth_state['stage'], branches, growth_state['alpha'])
