"""Progressive GAN: its layers against hand-computed cases, the growth schedule, fade-in
continuity, and a stage change that survives a kill and resume."""
import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import checkpoints, configs, growth, losses, models, train, validation
from gan_jax.errors import UserError
from gan_jax.layers import karras
from gan_jax.state import generate
from test_train import assert_trees_equal, killed_after_step_3_and_resumed, load_experiment

PROGAN = os.path.join(os.path.dirname(__file__), '..', 'experiments', 'progan.py')


def test_equalized_dense_scales_unit_weights_by_he_constant():
  layer = karras.EqualizedDense(3, lr_multiplier=0.01, bias_init=1.0)
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 5))
  params = layer.init(jax.random.PRNGKey(1), x)['params']
  # Stored at 1/c the scale, computed at c * sqrt(2) / sqrt(fan_in): He's constant.
  assert np.std(params['kernel']) == pytest.approx(100.0, rel=0.5)
  expected = x @ (params['kernel'] * 0.01 * math.sqrt(2.0 / 5)) + params['bias'] * 0.01
  np.testing.assert_allclose(layer.apply({'params': params}, x), expected, rtol=1e-5)
  np.testing.assert_allclose(params['bias'] * 0.01, 1.0)  # the computed bias starts at bias_init


@pytest.mark.parametrize('gain', [karras.HE_GAIN, 1.0])
def test_equalized_conv_is_a_conv_with_the_kernel_scaled_by_he_constant(gain):
  layer = karras.EqualizedConv(4, 3, gain, implementation='xla')
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 5, 6))
  params = layer.init(jax.random.PRNGKey(1), x)['params']
  params = {**params, 'bias': jnp.arange(4.0)}
  kernel = params['kernel'] * gain / math.sqrt(3 * 3 * 6)
  expected = jax.lax.conv_general_dilated(x, kernel, (1, 1), 'SAME',
                                          dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  np.testing.assert_allclose(layer.apply({'params': params}, x), expected + jnp.arange(4.0),
                             rtol=1e-5, atol=1e-5)


def test_pixel_norm_gives_unit_mean_square_per_pixel():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 3, 8)) * jnp.arange(1.0, 9.0)
  np.testing.assert_allclose(jnp.mean(karras.pixel_norm(x) ** 2, axis=-1), 1.0, rtol=1e-5)
  np.testing.assert_allclose(karras.pixel_norm(jnp.full((1, 1, 1, 4), 3.0)), 1.0, rtol=1e-6)


def test_minibatch_stddev_channel_equals_the_hand_computed_value():
  # Two groups of two 1x1 examples with two features. Group 1: (0, 0) and (2, 4): standard
  # deviations 1 and 2, mean 1.5. Group 2: (1, 1) and (1, 1): 0 (up to the epsilon's 1e-4).
  x = jnp.array([[0.0, 0.0], [2.0, 4.0], [1.0, 1.0], [1.0, 1.0]]).reshape(4, 1, 1, 2)
  y = karras.minibatch_stddev(x, group_size=2)
  assert y.shape == (4, 1, 1, 3)
  np.testing.assert_array_equal(y[..., :2], x)
  np.testing.assert_allclose(y[:, 0, 0, 2], [1.5, 1.5, 1e-4, 1e-4], rtol=1e-5)
  with pytest.raises(ValueError, match='groups of 3'):
    karras.minibatch_stddev(jnp.zeros((4, 1, 1, 2)), group_size=3)


def test_drift_penalty_is_the_mean_squared_real_logit():
  assert float(losses.drift_penalty(jnp.array([1.0, -3.0]))) == pytest.approx(5.0)


def _growth_config(stable, fade, batch_size=4):
  config = configs.default()
  config.model.name, config.batch_size = 'progan', batch_size
  config.growth.stable_images, config.growth.fade_images = stable, fade
  return config


def test_schedule_grows_one_stage_per_fade_and_stable_phase():
  config = _growth_config(stable=8, fade=8)  # 2 steps stable at 4x4, then 2 fading, 2 stable
  stages = [growth.stage_at(config, step, 32) for step in range(12)]
  assert stages == [0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3]
  alphas = [float(growth.alpha_at(config, step, stage)) for step, stage in enumerate(stages)]
  assert alphas == [1, 1, 0, 0.5, 1, 1, 0, 0.5, 1, 1, 0, 0.5]
  assert growth.stage_at(config, 10_000, 32) == 3  # the last stage goes on
  assert growth.stage_at(configs.default(), 5, 32) is None  # DCGAN does not grow


def test_real_images_fade_from_half_resolution():
  images = jax.random.normal(jax.random.PRNGKey(0), (2, 32, 32, 1))
  at_8 = growth.downscale(images, 8)
  np.testing.assert_allclose(growth.real_at_stage(images, 1, jnp.float32(1.0)), at_8, rtol=1e-6)
  np.testing.assert_allclose(growth.real_at_stage(images, 1, jnp.float32(0.0)),
                             growth.upscale(growth.downscale(images, 4), 8), atol=1e-6)
  # The mean of 16 copies of a value is that value up to float32 rounding of the sum, whose
  # order XLA picks per CPU (exact on AVX2, 1 ulp off on AVX-512): a few ulps.
  np.testing.assert_allclose(growth.downscale(growth.upscale(at_8, 32), 8), at_8, rtol=1e-6,
                             atol=1e-7)


def _progan(width=8):
  config = load_experiment(PROGAN, 'smoke')
  config.model.width = width
  generator, discriminator = models.build(config, (32, 32, 1))
  z = jax.random.normal(jax.random.PRNGKey(0), (4, 8))
  g_vars = generator.init(jax.random.PRNGKey(1), z, train=False)
  d_vars = discriminator.init(jax.random.PRNGKey(2), jnp.zeros((4, 32, 32, 1)), train=False)
  return generator, discriminator, z, g_vars, d_vars


def test_generator_fade_in_at_alpha_0_is_the_previous_stage_and_at_1_the_new_block():
  generator, _, z, g_vars, _ = _progan()
  g = lambda variables, stage, alpha: generator.apply(variables, z, stage=stage, alpha=alpha)
  for stage in (1, 2, 3):
    np.testing.assert_allclose(g(g_vars, stage, 0.0), g(g_vars, stage - 1, 1.0), atol=1e-6)
    # At alpha 1 the previous stage's output layer no longer counts; at 0, the new block.
    params = dict(g_vars['params'])
    params[f'to_rgb_{growth.side(stage - 1)}'] = jax.tree.map(
        lambda p: p + 1.0, params[f'to_rgb_{growth.side(stage - 1)}'])
    # Exact: the same program, and the changed layer's output is multiplied by 1 - alpha = 0.
    np.testing.assert_array_equal(g({'params': params}, stage, 1.0), g(g_vars, stage, 1.0))
    assert not np.allclose(g({'params': params}, stage, 0.0), g(g_vars, stage, 0.0))
  # Every stage's images come at the data's side, constant over the stage's pixels.
  images = g(g_vars, 1, 1.0)
  assert images.shape == (4, 32, 32, 1)
  np.testing.assert_allclose(images, growth.upscale(growth.downscale(images, 8), 32), rtol=1e-6,
                             atol=1e-7)  # a block's mean, up to its sum's rounding


def test_discriminator_fade_in_at_alpha_0_reads_the_half_resolution_input():
  _, discriminator, _, _, d_vars = _progan()
  images = jax.random.normal(jax.random.PRNGKey(3), (4, 16, 16, 1))
  d = lambda x, alpha: discriminator.apply(d_vars, x, alpha=alpha)
  np.testing.assert_allclose(d(images, 0.0), d(growth.downscale(images, 8), 1.0), rtol=1e-5,
                             atol=1e-6)
  assert not np.allclose(d(images, 1.0), d(images, 0.0))


def test_growing_layout_errors_say_how_to_fix_them():
  config = load_experiment(PROGAN)
  with pytest.raises(UserError, match='image_size=32'):
    models.build(config, (28, 28, 1))
  config.batch_size, config.model.mbstd_group_size = 6, 4
  with pytest.raises(UserError, match='mbstd_group_size=4 must divide'):
    validation.validate(config, 1)


def test_stage_change_survives_a_kill_and_resume_bit_for_bit(tmp_path, tiny_fashion, fast_compile):
  config = load_experiment(PROGAN, 'smoke')
  config.data.manual_dir, config.data.data_dir = tiny_fashion
  # Step 1 at 4x4; steps 2-4 at 8x8 fading in (alpha 0, 1/3, 2/3).
  config.growth.fade_images = 24
  config.update(num_steps=4, checkpoint_every=2, log_every=1, sample_every=100)
  uninterrupted = train.train_and_evaluate(config, str(tmp_path / 'a'))
  logged = [json.loads(line) for line in open(tmp_path / 'a' / 'metrics.jsonl')]
  assert [line['stage'] for line in logged] == [0, 1, 1, 1]
  assert [line['alpha'] for line in logged] == pytest.approx([1, 0, 1 / 3, 2 / 3])
  assert {key: float(value) for key, value in uninterrupted.growth.items()} == pytest.approx(
      {'stage': 1, 'alpha': 2 / 3})
  # Resumed from step 2's checkpoint, just past the stage change.
  resumed = killed_after_step_3_and_resumed(config, str(tmp_path / 'b'))
  assert_trees_equal(jax.device_get(uninterrupted), jax.device_get(resumed))
  # The checkpoint samples at its stage: 8x8 images upscaled to the data's side (smoke: 16).
  loaded = checkpoints.load(str(tmp_path / 'b'))
  images = generate(loaded.generator, loaded.state, jnp.ones((2, config.model.latent_dim)))
  assert images.shape == (2, 16, 16, 1)
  np.testing.assert_allclose(images, growth.upscale(growth.downscale(images, 8), 16), rtol=1e-6,
                             atol=1e-7)  # a block's mean, up to its sum's rounding
