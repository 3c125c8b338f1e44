"""The data-parallel training step: n_critic discriminator updates, then one generator update.

`make_train_step` writes one step per device, pmap style, and wraps it with
`jax.shard_map` over a one-axis `Mesh` named 'data': the state is replicated, the
real batches are split on their batch axis, gradients and metrics are averaged
with `lax.pmean`. The same code runs on one CPU, eight GPUs or a TPU pod.

What a config adds to the plain step is named here and nowhere else: class labels for
conditional models, DiffAugment before D, the penalties on D (WGAN-GP, R1, DRAGAN, ProGAN's
drift), BigGAN's orthogonal regularisation of G, StyleGAN2's path-length regularisation of G,
the lazy regularisers' schedule, and a growing model's stage (growth.py: static, one compiled
step each), with its fade-in, batch size, Adam resets and penalties at the data's side.
"""
from typing import Any

import flax.linen as nn
import jax
from jax import lax
import jax.numpy as jnp
import ml_collections
import optax
from jax.sharding import Mesh, PartitionSpec as P

from gan_jax import augment, growth, losses, models
from gan_jax.state import GANState, ema_decay, reset_adam, update_ema

AXIS = 'data'
# Random streams of a step besides its latents and WGAN-GP weights, folded into the step's key
# so that configs without them draw exactly the numbers they drew before they existed.
(_LABEL_STREAM, _AUGMENT_STREAM, _DRAGAN_STREAM, _GENERATOR_STREAM,
 _PATH_LENGTH_STREAM) = range(1, 6)
PATH_LENGTH_DECAY = 0.01  # of the path lengths' running mean (StyleGAN2's)
PATH_LENGTH_BATCH_SHRINK = 2  # the path-length batch is this many times smaller (StyleGAN2's)


def _device_slice(global_batch: jax.Array, per_device: int) -> jax.Array:
  """This device's rows of a batch drawn identically on every device."""
  return lax.dynamic_slice_in_dim(global_batch, lax.axis_index(AXIS) * per_device, per_device)


def _per_device(params):
  """Marks replicated params as per-device, so their gradients are this device's own.

  Under shard_map, the gradient with respect to a replicated value is summed over
  devices implicitly; taking it with respect to a per-device copy instead keeps the
  pmap-style explicit `lax.pmean` the one place where gradients are combined.
  """
  return jax.tree.map(lambda p: lax.pcast(p, AXIS, to='varying'), params)


def _stream(step_key: jax.Array, stream: int, count: int, per_device: bool = False) -> jax.Array:
  """`count` keys of one random stream of a step; `per_device` makes them differ by device."""
  key = jax.random.fold_in(step_key, stream)
  if per_device:
    key = jax.random.fold_in(key, lax.axis_index(AXIS))
  return jax.random.split(key, count)


def lazy_regularizers_due(config: ml_collections.ConfigDict, step: int) -> tuple[str, ...]:
  """The lazy regularisers generator step `step` (counted from 1) computes: ('r1',
  'path_length'), either or neither.

  StyleGAN2's lazy regularisation (Karras et al., 2020): with config.r1_every = k > 1, R1 is
  computed in every k-th step only, weighted k times; the path-length penalty likewise every
  config.pl_every steps. `make_train_step(regularize=...)` builds the step that computes them.
  The term joins that step's loss, so Adam takes no extra update for it and needs none of
  the reference's lr and beta rescaling by k / (k + 1), which compensates for a separate
  regularisation update.
  """
  due = []
  if config.r1_gamma > 0 and config.r1_every > 1 and step % config.r1_every == 0:
    due.append('r1')
  if config.pl_weight > 0 and step % config.pl_every == 0:
    due.append('path_length')
  return tuple(due)


def _orthogonal_targets(params: Any) -> list[jax.Array]:
  """The weights BigGAN regularises towards orthogonality: all but embeddings (its reference
  code exempts the shared class embedding)."""
  return [leaf for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]
          if 'embedding' not in jax.tree_util.keystr(path)]


def _mean_over_updates(metrics: list[dict[str, jax.Array]]) -> dict[str, jax.Array]:
  """Each metric averaged over the discriminator updates that report it (lazy R1: the last)."""
  names = dict.fromkeys(name for m in metrics for name in m)
  return {name: jnp.mean(jnp.stack([m[name] for m in metrics if name in m])) for name in names}


def make_train_step(config: ml_collections.ConfigDict, mesh: Mesh, generator: nn.Module,
                    discriminator: nn.Module, g_tx: optax.GradientTransformation,
                    d_tx: optax.GradientTransformation, regularize: tuple[str, ...] = (),
                    stage: int | None = None):
  """Returns the jitted `train_step(state, batch) -> (state, metrics)`.

  `batch` is {'data': [n_critic, batch_size, ...], 'label': [n_critic, batch_size]}
  (input_pipeline), sharded over the mesh on the batch axis. The step makes n_critic
  discriminator updates (a fresh real batch and fresh latents each, the generator fixed),
  then one generator update (the discriminator fixed) scored on the fake batch of the last
  discriminator update. Conditional models draw the fake batch's classes uniformly.
  Latents are drawn for the global batch and sliced per device, so a run trains the
  same model on 1 or N devices (up to per-device batch-norm statistics and augmentation).
  `regularize` names the lazy regularisers the step computes (`lazy_regularizers_due`);
  `stage`, a growing model's step at that stage (growth.stage_at), None for other models.
  G's 'noise' and 'mixing' random streams (StyleGAN2's) differ by device.
  """
  loss = losses.get(config.loss)
  batch_size = growth.batch_size(config, stage)
  per_device = batch_size // mesh.size
  latent_shape = (batch_size, config.model.latent_dim)
  sigmoid_loss = config.loss in losses.SIGMOID_LOSSES
  num_classes = models.num_classes(config)
  policy = augment.parse_policy(config.diffaugment)
  data_side = None if stage is None else discriminator.data_shape[0]  # a growing D's own
  # R1 every discriminator update, or on the last update of a lazy step, standing for the
  # r1_every * n_critic updates since the last one.
  r1_every_update = config.r1_every == 1
  r1_weight = config.r1_gamma / 2 * (1 if r1_every_update else config.r1_every * config.n_critic)

  def latents(key):
    return _device_slice(models.sample_latents(key, latent_shape, config.model.latent_prior),
                         per_device)

  def fake_labels(key):
    if not num_classes:
      return None
    return _device_slice(jax.random.randint(key, (batch_size,), 0, num_classes),
                         per_device)

  def maybe_augment(key, x):
    return augment.diff_augment(key, x, policy) if policy else x

  def growth_inputs(step):
    """The keywords a growing G and D take at `step` ({} for other models), and alpha."""
    if stage is None:
      return {}, {}, None
    alpha = growth.alpha_at(config, step, stage)
    return {'stage': stage, 'alpha': alpha}, {'alpha': alpha}, alpha

  def generator_rngs(key):
    noise_key, mixing_key = jax.random.split(key)
    return {'noise': noise_key, 'mixing': mixing_key}

  def run_generator(g_params, g_batch_stats, z, labels, g_inputs, key):
    fake, updates = generator.apply({'params': g_params, 'batch_stats': g_batch_stats}, z,
                                    labels, train=True, mutable=['batch_stats'],
                                    rngs=generator_rngs(key), **g_inputs)
    if stage is not None:  # D sees the stage's side, which G upscaled to the data's
      fake = growth.downscale(fake, growth.side(stage))
    return fake, updates.get('batch_stats', {})

  def logit_metrics(real_logits, fake_logits):
    metrics = {'d_real_logit': jnp.mean(real_logits), 'd_fake_logit': jnp.mean(fake_logits)}
    if config.loss != 'wasserstein':  # a critic's sign means nothing
      metrics['d_accuracy'] = 0.5 * (jnp.mean(real_logits > 0) + jnp.mean(fake_logits < 0))
    else:
      metrics['wasserstein_estimate'] = jnp.mean(real_logits) - jnp.mean(fake_logits)
    if sigmoid_loss:
      metrics['d_real'] = jnp.mean(jax.nn.sigmoid(real_logits))
      metrics['d_fake'] = jnp.mean(jax.nn.sigmoid(fake_logits))
      metrics['value_function'] = losses.value_function(real_logits, fake_logits)
    return metrics

  def penalties(critic, real, fake, keys, with_r1):
    """{name: (weight, value)} of the penalties on D this update carries."""
    alpha_key, dragan_key = keys
    terms = {}
    if config.gradient_penalty or config.dragan_penalty:
      alpha = _device_slice(jax.random.uniform(alpha_key, (batch_size,)), per_device)
    if config.gradient_penalty:
      terms['gradient_penalty'] = (config.gradient_penalty,
                                   losses.gradient_penalty(critic, real, fake, alpha))
    if config.dragan_penalty:
      perturbed = losses.dragan_perturbation(dragan_key, real)
      terms['dragan_penalty'] = (config.dragan_penalty,
                                 losses.gradient_penalty(critic, real, perturbed, alpha))
    if with_r1:
      terms['r1_penalty'] = (r1_weight, losses.r1_penalty(critic, real))
    return terms

  def discriminator_update(carry, real, real_labels, fake, labels, keys, with_r1, d_inputs):
    d_params, d_opt_state, d_batch_stats = carry
    augment_key, alpha_key, dragan_key = keys
    real_key, fake_key = jax.random.split(augment_key)
    fake = lax.stop_gradient(fake)
    # D sees real and fake through the same augmentation policy (DiffAugment).
    seen_real, seen_fake = maybe_augment(real_key, real), maybe_augment(fake_key, fake)

    def loss_fn(d_params):
      apply = lambda batch_stats, x, y: discriminator.apply(
          {'params': d_params, 'batch_stats': batch_stats}, x, y, train=True,
          mutable=['batch_stats'], **d_inputs)
      if config.model.d_batch_norm:
        # Batch norm normalises real and fake batches apart, as in DCGAN.
        real_logits, updates = apply(d_batch_stats, seen_real, real_labels)
        fake_logits, updates = apply(updates['batch_stats'], seen_fake, labels)
      else:
        # One pass over real and fake together: one update of the spectral-norm vectors.
        both_labels = None if labels is None else jnp.concatenate([real_labels, labels])
        logits, updates = apply(d_batch_stats, jnp.concatenate([seen_real, seen_fake]),
                                both_labels)
        real_logits, fake_logits = jnp.split(logits, 2)
      new_batch_stats = updates.get('batch_stats', {})
      d_loss = loss.discriminator(real_logits, fake_logits)
      metrics = {'d_loss': d_loss, **logit_metrics(real_logits, fake_logits)}
      if config.drift_penalty:
        metrics['drift_penalty'] = losses.drift_penalty(real_logits)
        d_loss = d_loss + config.drift_penalty * metrics['drift_penalty']
      # Penalties score real examples (and interpolates) with the real batch's labels. They
      # differentiate D at the images before augmentation, with the real batch's draw inside
      # D, as DiffAugment-stylegan2-pytorch's R1: they constrain D as a function of the data.
      critic = lambda x: discriminator.apply(
          {'params': d_params, 'batch_stats': new_batch_stats}, maybe_augment(real_key, x),
          real_labels, train=False, **d_inputs)
      penalized = (critic, real, fake)
      if stage is not None:  # on images at the data's side, as the reference's D sees them
        penalized = growth.at_data_side(critic, real, fake, stage, data_side)
      for name, (weight, value) in penalties(*penalized, (alpha_key, dragan_key),
                                             with_r1).items():
        metrics[name] = value
        d_loss = d_loss + weight * value
      return d_loss, (metrics, new_batch_stats)

    grads, (metrics, d_batch_stats) = jax.grad(loss_fn, has_aux=True)(_per_device(d_params))
    grads = lax.pmean(grads, AXIS)
    updates, d_opt_state = d_tx.update(grads, d_opt_state, d_params)
    # Grad norms are taken after the pmean: they are the same on every device already.
    metrics = {**lax.pmean(metrics, AXIS), 'd_grad_norm': optax.tree.norm(grads)}
    d_params = optax.apply_updates(d_params, updates)
    return (d_params, d_opt_state, lax.pmean(d_batch_stats, AXIS)), metrics

  def path_length_term(g_params, g_batch_stats, key):
    """StyleGAN2's path-length penalty on a smaller batch, its gradient and G's new
    'batch_stats': the running mean of the path lengths, and w_avg moved by this pass's
    mapping (the reference's Gpl pass updates it too)."""
    z_key, rng_key, y_key = jax.random.split(key, 3)
    z = latents(z_key)[:max(1, per_device // PATH_LENGTH_BATCH_SHRINK)]
    rngs = generator_rngs(rng_key)
    mean = g_batch_stats['path_length_mean']

    def penalty_fn(g_params):
      variables = {'params': g_params, 'batch_stats': g_batch_stats}
      ws, updates = generator.apply(variables, z, train=True, method='map', rngs=rngs,
                                    mutable=['batch_stats'])
      synthesize = lambda ws: generator.apply(variables, ws, method='synthesize', rngs=rngs)
      lengths = losses.path_lengths(synthesize, ws, y_key)
      batch_mean = lax.pmean(lax.stop_gradient(jnp.mean(lengths)), AXIS)
      new_mean = mean + PATH_LENGTH_DECAY * (batch_mean - mean)
      return (jnp.mean(jnp.square(lengths - new_mean)),
              {**updates['batch_stats'], 'path_length_mean': new_mean})

    (penalty, new_batch_stats), grads = jax.value_and_grad(penalty_fn, has_aux=True)(
        _per_device(g_params))
    return lax.pmean(penalty, AXIS), lax.pmean(grads, AXIS), new_batch_stats

  def generator_update(state, d_params, d_batch_stats, fake, labels, augment_key,
                       generator_vjp, d_inputs, path_length_key):
    def loss_fn(fake):
      # D as in its own updates (batch statistics); its state changes are dropped.
      fake_logits, _ = discriminator.apply({'params': d_params, 'batch_stats': d_batch_stats},
                                           maybe_augment(augment_key, fake), labels, train=True,
                                           mutable=['batch_stats'], **d_inputs)
      return loss.generator(fake_logits)

    g_loss, fake_grads = jax.value_and_grad(loss_fn)(fake)
    grads = lax.pmean(generator_vjp(fake_grads)[0], AXIS)
    metrics = {'g_loss': lax.pmean(g_loss, AXIS)}
    if config.orthogonal_reg:
      penalty, penalty_grads = jax.value_and_grad(
          lambda p: losses.orthogonal_penalty(_orthogonal_targets(p)))(_per_device(state.g_params))
      grads = jax.tree.map(lambda g, o: g + config.orthogonal_reg * o, grads,
                           lax.pmean(penalty_grads, AXIS))
      metrics['orthogonal_penalty'] = lax.pmean(penalty, AXIS)
    g_batch_stats = state.g_batch_stats
    if 'path_length' in regularize:
      penalty, penalty_grads, g_batch_stats = path_length_term(
          state.g_params, g_batch_stats, path_length_key)
      weight = config.pl_weight * config.pl_every
      grads = jax.tree.map(lambda g, p: g + weight * p, grads, penalty_grads)
      metrics.update(path_length_penalty=penalty,
                     path_length_mean=g_batch_stats['path_length_mean'])
    updates, g_opt_state = g_tx.update(grads, state.g_opt_state, state.g_params)
    g_params = optax.apply_updates(state.g_params, updates)
    return (g_params, g_opt_state, g_batch_stats,
            {**metrics, 'g_grad_norm': optax.tree.norm(grads)})

  def step(state: GANState, batch: dict[str, jax.Array]):
    n_critic = config.n_critic
    step_key = jax.random.fold_in(state.key, state.step)
    keys = jax.random.split(step_key, 2 * n_critic)
    z_keys, alpha_keys = keys[:n_critic], keys[n_critic:]
    label_keys = _stream(step_key, _LABEL_STREAM, n_critic)
    augment_keys = _stream(step_key, _AUGMENT_STREAM, n_critic + 1, per_device=True)
    dragan_keys = _stream(step_key, _DRAGAN_STREAM, n_critic, per_device=True)
    generator_keys = _stream(step_key, _GENERATOR_STREAM, n_critic, per_device=True)
    path_length_key, = _stream(step_key, _PATH_LENGTH_STREAM, 1, per_device=True)
    real_labels = batch['label'] if num_classes else [None] * n_critic
    labels = [fake_labels(key) for key in label_keys]
    g_inputs, d_inputs, alpha = growth_inputs(state.step)
    if stage is not None:
      fresh = growth.adam_reset_due(config, state.step, stage)
      state = state.replace(g_opt_state=reset_adam(state.g_opt_state, fresh),
                            d_opt_state=reset_adam(state.d_opt_state, fresh))
    # The last critic update and the generator update share one generator pass, as in
    # DCGAN's reference: its VJP is kept for the generator's gradient.
    fake, generator_vjp, g_batch_stats = jax.vjp(
        lambda g_params: run_generator(g_params, state.g_batch_stats, latents(z_keys[-1]),
                                       labels[-1], g_inputs, generator_keys[-1]),
        _per_device(state.g_params), has_aux=True)
    # A Python loop, unrolled at trace time: inside an XLA while loop (lax.scan) XLA:CPU runs
    # the convolutions over 10x slower. n_critic is small, so compile time stays moderate.
    carry, d_metrics = (state.d_params, state.d_opt_state, state.d_batch_stats), []
    for i in range(n_critic):
      last = i == n_critic - 1
      fake_i = (fake if last else run_generator(state.g_params, state.g_batch_stats,
                                                latents(z_keys[i]), labels[i], g_inputs,
                                                generator_keys[i])[0])
      real = batch['data'][i] if stage is None else growth.real_at_stage(batch['data'][i],
                                                                         stage, alpha)
      with_r1 = config.r1_gamma > 0 and (r1_every_update or 'r1' in regularize and last)
      carry, metrics = discriminator_update(
          carry, real, real_labels[i], fake_i, labels[i],
          (augment_keys[i], alpha_keys[i], dragan_keys[i]), with_r1, d_inputs)
      d_metrics.append(metrics)
    d_params, d_opt_state, d_batch_stats = carry
    # G's statistics as the shared pass left them: a path-length pass goes on from there.
    g_params, g_opt_state, g_batch_stats, g_metrics = generator_update(
        state.replace(g_batch_stats=g_batch_stats), d_params, d_batch_stats, fake, labels[-1],
        augment_keys[-1], generator_vjp, d_inputs, path_length_key)
    g_batch_stats = lax.pmean(g_batch_stats, AXIS)
    growth_metrics = {} if stage is None else {'stage': jnp.int32(stage), 'alpha': alpha}
    new_state = update_ema(state.replace(
        step=state.step + 1, g_params=g_params, d_params=d_params, g_opt_state=g_opt_state,
        d_opt_state=d_opt_state, g_batch_stats=g_batch_stats, d_batch_stats=d_batch_stats,
        growth=growth_metrics), ema_decay(config, state.step + 1, batch_size),
        config.g_ema_start, copy_batch_stats=config.model.name in models.EMA_COPIES_BATCH_STATS)
    return new_state, {**_mean_over_updates(d_metrics), **g_metrics, **growth_metrics}

  sharded = jax.shard_map(step, mesh=mesh, in_specs=(P(), P(None, AXIS)), out_specs=(P(), P()))
  return jax.jit(sharded, donate_argnums=0)
