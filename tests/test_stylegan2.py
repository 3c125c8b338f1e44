"""StyleGAN2: modulation, noise, the mapping to W and its truncation, style mixing and the
path-length regulariser, each against a hand-computed or independently computed case."""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh

from conftest import compiled_for_speed_of_compiling
from gan_jax import analysis, checkpoints, configs, losses, models, sample, train_step
from gan_jax.errors import UserError
from gan_jax.layers import style
from gan_jax.models import stylegan2
from gan_jax.state import GANState, create_optimizers, init_state


def test_demodulated_weights_have_unit_norm_per_output_channel():
  kernel = jax.random.normal(jax.random.PRNGKey(0), (3, 3, 5, 4))
  styles = jax.random.uniform(jax.random.PRNGKey(1), (2, 5), minval=0.1, maxval=3.0)
  weights = style.modulated_weights(kernel, styles)
  assert weights.shape == (2, 3, 3, 5, 4)
  np.testing.assert_allclose(jnp.sqrt(jnp.sum(weights ** 2, axis=(1, 2, 3))), 1.0, rtol=1e-5)
  # Without demodulation: the kernel times each example's style per input channel.
  np.testing.assert_allclose(style.modulated_weights(kernel, styles, demodulate=False)[1],
                             kernel * styles[1][None, None, :, None], rtol=1e-6)


@pytest.mark.parametrize('demodulate', [True, False])
def test_modulated_conv_is_each_example_convolved_with_its_own_weights(demodulate):
  layer = style.ModulatedConv(4, 3, demodulate=demodulate, implementation='xla')
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 6, 6, 5))
  w = jax.random.normal(jax.random.PRNGKey(1), (3, 7))
  variables = layer.init(jax.random.PRNGKey(2), x, w)
  params = variables['params']
  styles = w @ (params['style']['kernel'] / np.sqrt(7)) + params['style']['bias']
  if not demodulate:
    styles /= np.sqrt(3 * 3 * 5)
  weights = style.modulated_weights(params['kernel'], styles, demodulate)
  expected = jnp.stack([
      jax.lax.conv_general_dilated(x[i:i + 1], weights[i], (1, 1), 'SAME',
                                   dimension_numbers=('NHWC', 'HWIO', 'NHWC'))[0]
      for i in range(3)])
  np.testing.assert_allclose(layer.apply(variables, x, w), expected, rtol=1e-4, atol=1e-5)


def test_noise_input_adds_learned_strength_times_fresh_noise():
  x = jnp.zeros((2, 4, 4, 3))
  layer = style.NoiseInput()
  variables = layer.init(jax.random.PRNGKey(0), x)
  assert float(variables['params']['strength']) == 0.0  # starts without noise
  np.testing.assert_array_equal(layer.apply(variables, x), x)  # no 'noise' stream: none
  strong = {'params': {'strength': jnp.float32(2.0)}}
  noisy = layer.apply(strong, x, rngs={'noise': jax.random.PRNGKey(1)})
  np.testing.assert_array_equal(noisy[..., 0], noisy[..., 2])  # one image per example
  assert np.std(noisy) == pytest.approx(2.0, rel=0.3)
  assert not np.allclose(noisy, layer.apply(strong, x, rngs={'noise': jax.random.PRNGKey(2)}))


def _generator(style_mixing=0.9):
  config = configs.default()
  config.model.update(name='stylegan2', width=16, mapping_layers=2, style_mixing=style_mixing)
  generator, discriminator = models.build(config, (16, 16, 1))
  z = jax.random.normal(jax.random.PRNGKey(0), (4, 8))
  variables = generator.init(jax.random.PRNGKey(1), z, train=False)
  return generator, discriminator, z, variables


def test_num_ws_counts_two_per_resolution():
  assert [stylegan2.num_ws(side) for side in (8, 16, 32, 64)] == [4, 6, 8, 10]


def test_truncation_psi_0_gives_the_image_of_the_average_w():
  generator, _, z, variables = _generator()
  w_avg = jax.random.normal(jax.random.PRNGKey(3), (16,))
  variables = {**variables, 'batch_stats': {**variables['batch_stats'], 'w_avg': w_avg}}
  images = generator.apply(variables, z, train=False, truncation_psi=0.0)
  ws = jnp.broadcast_to(w_avg, (1, generator.num_ws, 16))
  average = generator.apply(variables, ws, method=generator.synthesize)
  np.testing.assert_allclose(images, jnp.broadcast_to(average, images.shape), rtol=1e-5,
                             atol=1e-6)


def test_training_moves_w_avg_towards_the_batch_mean_of_w():
  generator, _, z, variables = _generator(style_mixing=0.0)
  _, updates = generator.apply(variables, z, train=True, mutable=['batch_stats'])
  w = generator.apply(variables, z, method=lambda g, z: g.mapping(z))
  np.testing.assert_allclose(updates['batch_stats']['w_avg'],
                             (1 - stylegan2.W_AVG_BETA) * jnp.mean(w, 0), rtol=1e-5, atol=1e-7)


def test_style_mixing_feeds_a_second_latents_w_from_the_cutoff_on():
  generator, _, z, variables = _generator(style_mixing=1.0)
  ws, _ = generator.apply(variables, z, train=True, method=generator.map,
                          rngs={'mixing': jax.random.PRNGKey(5)}, mutable=['batch_stats'])
  w = generator.apply(variables, z, method=lambda g, z: g.mapping(z))
  first = np.all(np.isclose(ws, w[:, None]), axis=(0, 2))
  # Layers [0, cutoff) read z's w, the others one w of another latent per example.
  cutoff = int(np.argmin(first))
  assert 1 <= cutoff < generator.num_ws and np.all(first[:cutoff]) and not np.any(first[cutoff:])
  np.testing.assert_array_equal(ws[:, cutoff:], jnp.broadcast_to(ws[:, -1:], ws[:, cutoff:].shape))


def test_path_lengths_match_a_finite_difference_jacobian_estimate():
  # A small nonlinear synthesis: images = tanh(ws @ A) reshaped; J^T y by finite differences.
  a = jax.random.normal(jax.random.PRNGKey(0), (3, 4, 2 * 2 * 1)) * 0.5
  synthesize = lambda ws: jnp.tanh(jnp.einsum('bkd,kdp->bp', ws, a)).reshape(-1, 2, 2, 1)
  ws = jax.random.normal(jax.random.PRNGKey(1), (2, 3, 4))
  key = jax.random.PRNGKey(2)
  lengths = losses.path_lengths(synthesize, ws, key)
  y = jax.random.normal(key, (2, 2, 2, 1)) / 2.0  # the same draw: N(0, 1) / sqrt(H * W)
  h, estimate = 1e-3, np.zeros((2, 3, 4))
  for k in range(3):
    for d in range(4):
      step = np.zeros((2, 3, 4), np.float32)
      step[:, k, d] = h
      difference = synthesize(ws + step) - synthesize(ws - step)
      estimate[:, k, d] = np.sum(np.asarray(difference * y), axis=(1, 2, 3)) / (2 * h)
  expected = np.sqrt(np.mean(np.sum(estimate ** 2, axis=2), axis=1))
  np.testing.assert_allclose(lengths, expected, rtol=1e-2)


def test_discriminator_scores_each_image_and_needs_whole_groups():
  _, discriminator, _, _ = _generator()
  images = jax.random.normal(jax.random.PRNGKey(0), (8, 16, 16, 1))
  variables = discriminator.init(jax.random.PRNGKey(1), images)
  assert discriminator.apply(variables, images).shape == (8,)
  with pytest.raises(ValueError, match='groups of 4'):
    discriminator.apply(variables, images[:6])


def test_lazy_regularisers_train_and_keep_the_path_length_mean(stylegan2_workdir):
  lines = [json.loads(line) for line in open(os.path.join(stylegan2_workdir, 'metrics.jsonl'))]
  assert 'path_length_penalty' in lines[0] and 'r1_penalty' not in lines[0]
  assert {'path_length_penalty', 'r1_penalty'} <= set(lines[1])
  assert all(np.isfinite(value) for line in lines for value in line.values())
  # The running mean moves from 0 by 1% of each step's mean path length, and is kept.
  means = [line['path_length_mean'] for line in lines]
  assert 0 < means[0] < means[1]
  state = checkpoints.load(stylegan2_workdir).state
  assert float(state.g_batch_stats['path_length_mean']) == pytest.approx(means[1], rel=1e-5)
  assert float(jnp.linalg.norm(state.g_batch_stats['w_avg'])) > 0


def test_truncation_psi_samples_and_style_mixing_of_a_checkpoint(stylegan2_workdir):
  run = analysis.load(stylegan2_workdir)
  average = sample.sample(run.loaded, 3, seed=0, truncation_psi=0.0)
  # One image for every latent, up to the noise inputs (their strengths barely left 0).
  np.testing.assert_allclose(average, np.broadcast_to(average[:1], average.shape), atol=1e-3)
  truncated = sample.sample(run.loaded, 3, seed=0, truncation_psi=0.7)
  assert not np.allclose(average, truncated)
  output = os.path.join(stylegan2_workdir, 'truncated.npy')  # the README's command
  done = subprocess.run([sys.executable, '-m', 'gan_jax.sample', '--workdir', stylegan2_workdir,
                         '--truncation_psi', '0.7', '--num_samples', '3', '--output', output],
                        capture_output=True, text=True, check=False)
  assert done.returncode == 0, done.stderr
  assert done.stdout.strip().endswith(f'to {output}: untruncated latents, truncation_psi 0.7.')
  np.testing.assert_allclose(np.load(output), truncated, atol=1e-6)
  z = run.latents(3, seed=1)
  grid = analysis.style_mixing_grid(run, z, z, cutoff=2)
  side = run.loaded.data_shape[0]
  assert grid.shape == (4 * side + 3 * 2, 4 * side + 3 * 2, 1)
  tile = lambda row, col: grid[row * (side + 2):row * (side + 2) + side,
                               col * (side + 2):col * (side + 2) + side].astype(float) / 255
  assert np.all(tile(0, 0) == 1.0)  # the blank corner
  for i in range(1, 4):
    # A latent's coarse styles mixed with its own fine ones give its own image (up to the
    # noise, which differs by position in the batch).
    np.testing.assert_allclose(tile(i, i), tile(i, 0), atol=0.05)
    np.testing.assert_allclose(tile(0, i), tile(i, 0), atol=0.05)
  with pytest.raises(ValueError, match='cutoff must be in'):
    analysis.style_mixing_grid(run, z, z, cutoff=0)


def test_truncation_psi_is_refused_for_other_generators():
  loaded = checkpoints.Loaded(configs.default(), None, None, None, (28, 28, 1))
  with pytest.raises(UserError, match='dcgan generator: use --truncation'):
    sample.sample(loaded, 2, seed=0, truncation_psi=0.5)


def _state_of(variables, **fields):
  return GANState(step=jnp.zeros((), jnp.int32), key=None, g_params=variables['params'],
                  d_params={}, g_opt_state={}, d_opt_state={},
                  g_batch_stats=variables['batch_stats'], d_batch_stats={}, **fields)


def test_sampling_draws_each_samples_noise_from_the_seed_and_its_index():
  generator, _, z, variables = _generator()
  params = jax.tree_util.tree_map_with_path(  # noise strengths of 1: the noise shows
      lambda path, p: jnp.ones_like(p) if 'noise' in jax.tree_util.keystr(path) else p,
      variables['params'])
  state = _state_of({**variables, 'params': params})
  same = np.repeat(np.asarray(z[:1]), 6, axis=0)  # one latent six times
  draw = lambda **kwargs: sample.generate_samples(generator, state, same, **kwargs)
  chunked = draw(batch_size=2)
  # Each sample its own noise: no two alike, though chunks of 2 once shared one key.
  assert min(np.abs(chunked[i] - chunked[j]).max() for i in range(6) for j in range(i)) > 1e-3
  np.testing.assert_allclose(draw(batch_size=6), chunked, atol=1e-5)  # whatever the chunks
  np.testing.assert_array_equal(draw(batch_size=2), chunked)  # a seed reproduces its images
  assert not np.allclose(draw(batch_size=2, noise_seed=1), chunked)
  fixed = draw(batch_size=2, fixed_noise=True)  # an interpolation's frames: one noise
  np.testing.assert_array_equal(fixed, np.broadcast_to(fixed[:1], fixed.shape))
  np.testing.assert_allclose(fixed[0], chunked[0], atol=1e-5)


def _step_from_init(regularize):
  """One train step of a tiny StyleGAN2 (8x8, no style mixing) from its initial state."""
  config = configs.default()
  config.model.update(name='stylegan2', width=8, latent_dim=8, mapping_layers=2,
                      style_mixing=0.0)
  config.update(batch_size=4, pl_weight=2.0, g_ema_decay=0.5)
  mesh = Mesh(jax.devices()[:1], ('data',))
  generator, discriminator = models.build(config, (8, 8, 1))
  g_tx, d_tx = create_optimizers(config)
  state = init_state(config, mesh, generator, discriminator, g_tx, d_tx, (8, 8, 1))
  batch = {'data': jnp.zeros((1, 4, 8, 8, 1)), 'label': jnp.zeros((1, 4), jnp.int32)}
  with compiled_for_speed_of_compiling():
    step = train_step.make_train_step(config, mesh, generator, discriminator, g_tx, d_tx,
                                      regularize=regularize)
    return jax.device_get(step(state, batch)[0])


def test_w_avg_moves_in_every_mapping_pass_and_the_ema_copies_it():
  plain, regularized = _step_from_init(()), _step_from_init(('path_length',))
  for state in (plain, regularized):  # copied, as the reference copies G's buffers
    np.testing.assert_array_equal(state.g_ema_batch_stats['w_avg'],
                                  state.g_batch_stats['w_avg'])
    assert np.abs(state.g_batch_stats['w_avg']).max() > 0
  # The path-length pass maps latents of its own, and moves w_avg once more.
  assert np.abs(plain.g_batch_stats['w_avg'] - regularized.g_batch_stats['w_avg']).max() > 1e-6
