"""Model shapes, parameter counts, output ranges and spectral normalization."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import configs, models
from gan_jax.errors import UserError
from test_train import EXPERIMENTS, load_experiment

# The sides of the colour images each image family makes; DCGAN's plain stack of strided
# convolutions is meant for small images.
SIDES = {'dcgan': (32, 64), 'resnet': (32, 64, 128, 256), 'biggan': (32, 64, 128, 256),
         'progan': (32, 64, 128, 256), 'stylegan2': (32, 64, 128, 256)}
# Every experiment of an image family, by its file name.
IMAGE_EXPERIMENTS = {os.path.basename(path): config for path in EXPERIMENTS
                     if (config := load_experiment(path)).model.name in SIDES}


def _config(name='dcgan', **model):
  config = configs.default()
  config.model.name = name
  config.model.update(model)
  return config


def _count(params):
  return sum(p.size for p in jax.tree.leaves(params))


def _init(module, shape, key=0):
  return module.init(jax.random.PRNGKey(key), jnp.zeros((2,) + shape), train=False)


def test_dcgan64_matches_pytorch_reference_parameter_counts():
  # pytorch/examples dcgan with nz=100, ngf=ndf=64, nc=3 (all convs bias-free):
  # G: 100*512*16 + 512*256*16 + 256*128*16 + 128*64*16 + 64*3*16 conv weights.
  # Ours: the first transposed conv is a Dense 100 -> 4*4*512; the last layer has a bias (+3);
  # batch norm scale and bias for 512 + 256 + 128 + 64 channels (+1920).
  generator, discriminator = models.build(_config(latent_dim=100, width=64), (64, 64, 3))
  g_vars = jax.eval_shape(generator.init, jax.random.PRNGKey(0), jnp.zeros((1, 100)))
  g_weights = 16 * (100 * 512 + 512 * 256 + 256 * 128 + 128 * 64 + 64 * 3)
  assert _count(g_vars['params']) == g_weights + 3 + 2 * (512 + 256 + 128 + 64)
  # D: 3*64*16 + 64*128*16 + 128*256*16 + 256*512*16 + 512*16 (final 4x4 conv = Dense) weights,
  # plus one bias per conv layer (64 + 128 + 256 + 512 + 1).
  d_vars = jax.eval_shape(discriminator.init, jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3)))
  d_weights = 16 * (3 * 64 + 64 * 128 + 128 * 256 + 256 * 512 + 512 * 1)
  assert _count(d_vars['params']) == d_weights + 64 + 128 + 256 + 512 + 1


def test_dcgan64_batch_norm_discriminator_matches_pytorch_reference():
  # pytorch/examples' D: bias-free convs, batch norm after all but the first (scale + bias).
  # Ours keeps a bias where no batch norm follows: the first conv (+64) and the final Dense (+1).
  _, discriminator = models.build(_config(width=64, d_batch_norm=True), (64, 64, 3))
  d_vars = jax.eval_shape(discriminator.init, jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3)))
  d_weights = 16 * (3 * 64 + 64 * 128 + 128 * 256 + 256 * 512 + 512 * 1)
  assert _count(d_vars['params']) == d_weights + 64 + 1 + 2 * (128 + 256 + 512)
  assert _count(d_vars['batch_stats']) == 2 * (128 + 256 + 512)  # running mean and variance


def test_every_image_family_has_its_sides_and_an_experiment():
  assert set(SIDES) == set(models.IMAGE_MODELS)
  assert {config.model.name for config in IMAGE_EXPERIMENTS.values()} == set(SIDES)


@pytest.mark.parametrize('experiment, side', [
    (experiment, side) for experiment, config in IMAGE_EXPERIMENTS.items()
    for side in SIDES[config.model.name]])
def test_every_family_makes_and_judges_colour_images_at_its_sides(experiment, side):
  """The experiment's own networks (full width), traced without compiling: jax.eval_shape."""
  config = IMAGE_EXPERIMENTS[experiment].copy_and_resolve_references()
  # As training resolves it for a data set of 10 classes of colour images (data.resolve).
  config.data.update(shape=(side, side, 3), num_classes=10, class_names=())
  generator, discriminator = models.build(config, (side, side, 3))
  if config.model.conditional:
    assert generator.num_classes == discriminator.num_classes == 10
  z = jnp.zeros((2, config.model.latent_dim))
  labels = jnp.arange(2, dtype=jnp.int32)

  def generate_and_discriminate(key):
    g_vars = generator.init(key, z, labels, train=False)
    images = generator.apply(g_vars, z, labels, train=False)
    d_vars = discriminator.init(key, images, labels, train=False)
    return images, discriminator.apply(d_vars, images, labels, train=False)

  images, logits = jax.eval_shape(generate_and_discriminate, jax.random.key(0))
  assert images.shape == (2, side, side, 3) and images.dtype == jnp.float32
  assert logits.shape == (2,) and logits.dtype == jnp.float32


@pytest.mark.parametrize('shape', [(28, 28, 1), (32, 32, 3), (64, 64, 3)])
def test_dcgan_generator_makes_images_in_tanh_range(shape, fast_compile):
  generator, discriminator = models.build(_config(width=8, latent_dim=16), shape)
  z = 10.0 * jax.random.normal(jax.random.PRNGKey(1), (4, 16))  # large z saturates tanh

  @jax.jit
  def generate_and_discriminate(z):
    g_vars = generator.init(jax.random.PRNGKey(0), z, train=False)
    images, _ = generator.apply(g_vars, z, train=True, mutable=['batch_stats'])
    return images, discriminator.apply(discriminator.init(jax.random.PRNGKey(2), images), images)

  images, logits = generate_and_discriminate(z)
  assert images.shape == (4,) + shape
  assert jnp.all(jnp.abs(images) <= 1.0)
  assert logits.shape == (4,)


def test_mlp_generator_output_is_unbounded_for_points_and_tanh_for_images():
  generator, _ = models.build(_config('mlp', width=16, latent_dim=4), (2,))
  params = generator.init(jax.random.PRNGKey(0), jnp.zeros((1, 4)))
  points = generator.apply(params, 100.0 * jnp.ones((3, 4)))
  assert points.shape == (3, 2) and jnp.max(jnp.abs(points)) > 1.0
  generator, _ = models.build(_config('mlp', width=16, latent_dim=4), (28, 28, 1))
  params = generator.init(jax.random.PRNGKey(0), jnp.zeros((1, 4)))
  images = generator.apply(params, 100.0 * jnp.ones((3, 4)))
  assert images.shape == (3, 28, 28, 1) and jnp.max(jnp.abs(images)) <= 1.0


@pytest.mark.parametrize('prior', models.LATENT_PRIORS)
def test_latent_priors(prior):
  z = np.asarray(models.sample_latents(jax.random.PRNGKey(0), (20_000, 2), prior))
  if prior == 'gaussian':
    np.testing.assert_allclose([z.mean(), z.std()], [0.0, 1.0], atol=0.02)
  else:
    assert z.min() >= -1.0 and z.max() <= 1.0
    np.testing.assert_allclose(z.std(), 1 / np.sqrt(3), atol=0.01)  # U[-1, 1]


def test_unknown_prior_and_unproducible_images_are_user_errors():
  with pytest.raises(UserError, match='gaussian'):
    models.sample_latents(jax.random.PRNGKey(0), (1, 2), 'normal')
  with pytest.raises(UserError, match='28, 32, 64'):
    models.build(_config(), (30, 30, 1))
  with pytest.raises(UserError, match='mlp'):
    models.build(_config(), (2,))


def _largest_singular_value(kernel):
  return np.linalg.svd(np.asarray(kernel).reshape(-1, kernel.shape[-1]), compute_uv=False)[0]


def test_spectral_norm_bounds_largest_singular_value():
  _, discriminator = models.build(_config('mlp', width=64, spectral_norm=True), (2,))
  variables = _init(discriminator, (2,))
  x = jax.random.normal(jax.random.PRNGKey(1), (16, 2))
  # Scale the raw weights up: unnormalised they would have singular values >> 1.
  variables = {**variables,
               'params': jax.tree.map(lambda p: 10.0 * p, variables['params'])}
  assert _largest_singular_value(variables['params']['Dense_1']['kernel']) > 5.0
  # Power iteration runs in the discriminator's training pass; after some, sigma is exact.
  for _ in range(50):
    _, updates = discriminator.apply(variables, x, train=True, mutable=['batch_stats'])
    variables = {**variables, **updates}
  stats = variables['batch_stats']
  for layer in ('Dense_0', 'Dense_1', 'Dense_2', 'Dense_3'):
    kernel = variables['params'][layer]['kernel']
    sigma = stats['SpectralNorm_' + layer[-1]][f'{layer}/kernel/sigma']
    np.testing.assert_allclose(_largest_singular_value(kernel / sigma), 1.0, rtol=1e-3)
  # The whole network is then 1-Lipschitz (leaky ReLU is too): |D(x) - D(y)| <= |x - y|.
  y = x + 0.1 * jax.random.normal(jax.random.PRNGKey(2), x.shape)
  dx, dy = (discriminator.apply(variables, v, train=False) for v in (x, y))
  assert np.all(np.abs(dx - dy) <= np.linalg.norm(x - y, axis=1) + 1e-5)
  # Outside training the vectors stay as they are.
  _, updates = discriminator.apply(variables, x, train=False, mutable=['batch_stats'])
  assert jax.tree.all(jax.tree.map(np.array_equal, updates['batch_stats'], stats))


@pytest.mark.parametrize('name', ['resnet', 'biggan'])
def test_resnet_families_are_conditional_image_models(name):
  config = _config(name, width=8, latent_dim=8, conditional=True)  # Fashion-MNIST: 10 classes
  generator, discriminator = models.build(config, (32, 32, 1))
  assert generator.num_classes == discriminator.num_classes == 10
  config.model.conditional = False
  assert models.build(config, (32, 32, 1))[0].num_classes == 0
  with pytest.raises(UserError, match='image_size=32'):
    models.build(config, (28, 28, 1))
