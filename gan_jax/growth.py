"""Progressive growing (Karras et al., 2018): the resolution a run trains at, step by step.

Training starts at 4x4 and doubles the side stage by stage up to the data's. Stage 0 trains
for config.growth.stable_images real images shown to D; every later stage first fades its
new blocks in, alpha rising linearly from 0 to 1 over config.growth.fade_images, then trains
stably for stable_images more; the last stage goes on to the end of the run. The schedule is
a pure function of the step, so a resumed run lands at the same stage and alpha; the state
records both (`GANState.growth`) for the logs and for sampling a checkpoint as it was.

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


def _images_shown(config: ml_collections.ConfigDict, step: Any) -> Any:
  """Real images D has seen after `step` generator updates (n_critic batches each)."""
  return step * config.batch_size * config.n_critic


def stage_at(config: ml_collections.ConfigDict, step: int, final_side: int) -> int | None:
  """The stage of the update after `step` generator updates; None for a model that does not
  grow."""
  if not is_growing(config):
    return None
  images, stage = _images_shown(config, step), 0
  while stage + 1 < num_stages(final_side) and images >= _stage_start(config, stage + 1):
    stage += 1
  return stage


def stages(config: ml_collections.ConfigDict, final_side: int) -> list[int | None]:
  """Every stage a run of `config` can be at ([None] for a model that does not grow)."""
  return list(range(num_stages(final_side))) if is_growing(config) else [None]


def alpha_at(config: ml_collections.ConfigDict, step: jax.Array, stage: int) -> jax.Array:
  """The fade-in's alpha in the update after `step` generator updates, at `stage`: rising
  from 0 to 1 over config.growth.fade_images (1 at stage 0 and once faded in)."""
  if stage == 0 or config.growth.fade_images == 0:
    return jnp.ones((), jnp.float32)
  faded = _images_shown(config, jnp.asarray(step, jnp.float32)) - _stage_start(config, stage)
  return jnp.clip(faded / config.growth.fade_images, 0.0, 1.0)


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


def generate_at_stage(apply: Callable[..., jax.Array], growth_state: dict[str, jax.Array],
                      stages_count: int) -> jax.Array:
  """`apply(stage=s, alpha=a)` at the state's stage and alpha, which may be traced: one
  branch per stage, the one of the state's stage taken."""
  branches = [functools.partial(lambda alpha, s: apply(stage=s, alpha=alpha), s=stage)
              for stage in range(stages_count)]
  return jax.lax.switch(growth_state['stage'], branches, growth_state['alpha'])
