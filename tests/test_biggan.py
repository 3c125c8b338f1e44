"""BigGAN: its CIFAR-10 layout, the hierarchical latent, self-attention, spectral norm and
orthogonal initialisation in G."""
import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import configs
from gan_jax.models import biggan
from test_resnet import spectrally_normalized_weights, variable_shapes

# Each test compiles a network or a step to run it once or twice.
pytestmark = pytest.mark.usefixtures('fast_compile')


def _build(shape=(32, 32, 3), num_classes=10, **model):
  config = configs.default()
  config.model.update({'name': 'biggan', **model})
  return biggan.build(config, shape, num_classes)


def _blocks(params, prefix):
  return sorted(name for name in params if name.startswith(prefix))


def test_the_cifar_layout_of_biggan_pytorch():
  # arch[32] with ch=64: three G blocks of 4 * 64 channels; four D blocks of 256, the first
  # two downsampling; z of 128 in 4 chunks of 32; a shared class embedding of 128.
  generator, discriminator = _build(width=256, latent_dim=128)
  z, labels = jnp.zeros((2, 128)), jnp.zeros((2,), jnp.int32)
  g_params = variable_shapes(generator, z, labels)['params']
  assert g_params['Dense_0']['kernel'] == (32, 16 * 256)  # the first chunk of z only
  assert g_params['shared_embedding']['embedding'] == (10, 128)
  assert _blocks(g_params, 'GBlock') == ['GBlock_0', 'GBlock_1', 'GBlock_2']
  for i in range(3):
    block = g_params[f'GBlock_{i}']
    assert [block[conv]['kernel'] for conv in ('Conv_0', 'Conv_1', 'Conv_2')] == [
        (3, 3, 256, 256), (3, 3, 256, 256), (1, 1, 256, 256)]
    for norm in ('ConditionalBatchNorm_0', 'ConditionalBatchNorm_1'):
      assert block[norm] == {'gain': {'kernel': (128 + 32, 256)},
                             'bias': {'kernel': (128 + 32, 256)}}
  assert g_params['Conv_0']['kernel'] == (3, 3, 256, 3)
  x = jnp.zeros((2, 32, 32, 3))
  d_params = variable_shapes(discriminator, x, labels)['params']
  assert _blocks(d_params, 'DBlock') == ['DBlock_0', 'DBlock_1', 'DBlock_2', 'DBlock_3']
  assert [('Conv_2' in d_params[f'DBlock_{i}']) for i in range(4)] == [True, True, False, False]
  assert d_params['DBlock_0']['Conv_0']['kernel'] == (3, 3, 3, 256)
  assert d_params['ProjectionHead_0']['embed']['embedding'] == (10, 256)
  g_vars = jax.eval_shape(generator.init, jax.random.key(0), z, labels)
  images = jax.eval_shape(lambda v: generator.apply(v, z, labels, train=False), g_vars)
  assert images.shape == (2, 32, 32, 3) and images.dtype == jnp.float32
  d_vars = jax.eval_shape(discriminator.init, jax.random.key(0), x, labels)
  logits = jax.eval_shape(lambda v: discriminator.apply(v, x, labels, train=False), d_vars)
  assert logits.shape == (2,) and logits.dtype == jnp.float32


def test_64x64_has_one_more_block_and_one_more_latent_chunk():
  generator, discriminator = _build((64, 64, 3), width=8, latent_dim=100)
  labels = jnp.zeros((1,), jnp.int32)
  g_params = variable_shapes(generator, jnp.zeros((1, 100)), labels)['params']
  assert len(_blocks(g_params, 'GBlock')) == 4 and g_params['Dense_0']['kernel'][0] == 20
  d_params = variable_shapes(discriminator, jnp.zeros((1, 64, 64, 3)), labels)['params']
  assert len(_blocks(d_params, 'DBlock')) == 5


def test_latent_chunk_sizes():
  assert biggan.latent_chunk_sizes(128, 4) == [32, 32, 32, 32]
  assert biggan.latent_chunk_sizes(10, 4) == [3, 3, 2, 2]
  assert biggan.latent_chunk_sizes(120, 6) == [20] * 6  # the paper's 128x128 G


@pytest.mark.parametrize('num_classes', [0, 3])
def test_each_latent_chunk_feeds_its_own_resolution(num_classes):
  generator, _ = _build(width=8, latent_dim=10, num_classes=num_classes)
  sizes = biggan.latent_chunk_sizes(10, 4)
  z = jax.random.normal(jax.random.key(1), (2, 10))
  labels = jnp.array([0, 2])
  variables = generator.init(jax.random.key(0), z, labels, train=False)
  params = variables['params']
  assert params['Dense_0']['kernel'].shape[0] == sizes[0]
  embedding_dim = 128 if num_classes else 0
  for i in range(3):
    for norm in ('ConditionalBatchNorm_0', 'ConditionalBatchNorm_1'):
      assert params[f'GBlock_{i}'][norm]['gain']['kernel'].shape[0] == embedding_dim + sizes[i + 1]

  @jax.jit
  def generate(z):
    images, state = generator.apply(variables, z, labels, train=False,
                                    capture_intermediates=True)
    return images, [state['intermediates'][f'GBlock_{i}']['__call__'][0] for i in range(3)]

  images, blocks = generate(z)
  offsets = np.cumsum([0] + sizes)
  for chunk in range(4):
    changed = z.at[:, offsets[chunk]:offsets[chunk + 1]].add(1.0)
    new_images, new_blocks = generate(changed)
    assert np.abs(new_images - images).max() > 1e-3
    # Chunk 0 enters through the dense layer, chunk k >= 1 through block k - 1's batch norms:
    # the blocks before it are untouched.
    first_changed = max(chunk - 1, 0)
    for i in range(3):
      if i < first_changed:
        # Exact: the same program, and these blocks' inputs are unchanged.
        np.testing.assert_array_equal(new_blocks[i], blocks[i])
      else:
        assert np.abs(new_blocks[i] - blocks[i]).max() > 1e-4


@pytest.mark.parametrize('resolution', [8, 16])
def test_self_attention_at_the_configured_resolution_with_spectral_norm(resolution):
  generator, discriminator = _build(width=16, latent_dim=8, attention_resolution=resolution)
  z, labels = jnp.zeros((1, 8)), jnp.zeros((1,), jnp.int32)
  g_vars = jax.eval_shape(lambda: generator.init(jax.random.key(0), z, labels, train=False))
  _, state = jax.eval_shape(lambda v: generator.apply(v, z, labels, train=False,
                                                      capture_intermediates=True), g_vars)
  captured = state['intermediates']
  assert [name for name in captured if name.startswith('SelfAttention')] == ['SelfAttention_0']
  assert captured['SelfAttention_0']['__call__'][0].shape[1:3] == (resolution, resolution)
  assert len(g_vars['batch_stats']['SelfAttention_0']) == 4  # theta, phi, g, o
  x = jnp.zeros((1, 32, 32, 3))
  _, state = jax.eval_shape(lambda: discriminator.apply(
      discriminator.init(jax.random.key(0), x, labels), x, labels, train=False,
      capture_intermediates=True))
  captured = state['intermediates']
  assert [name for name in captured if name.startswith('SelfAttention')] == ['SelfAttention_0']
  assert captured['SelfAttention_0']['__call__'][0].shape[1:3] == (resolution, resolution)
  generator, _ = _build(width=16, latent_dim=8)
  assert 'SelfAttention_0' not in variable_shapes(generator, z, labels)['params']


@pytest.mark.parametrize('spectral_norm', [False, True])
def test_spectral_norm_on_every_weight_of_both_networks(spectral_norm):
  # BigGAN's whatever config.model.spectral_norm says; G's shared embedding is not
  # normalised (BigGAN-PyTorch's is a plain nn.Embedding).
  generator, discriminator = _build(width=16, latent_dim=8, attention_resolution=16,
                                    spectral_norm=spectral_norm)
  labels = jnp.zeros((1,), jnp.int32)
  for module, inputs in ((generator, jnp.zeros((1, 8))),
                         (discriminator, jnp.zeros((1, 32, 32, 3)))):
    variables = variable_shapes(module, inputs, labels)
    weights = {path for path in flax.traverse_util.flatten_dict(variables['params'])
               if path[-1] in ('kernel', 'embedding')} - {('shared_embedding', 'embedding')}
    assert len(weights) > 10
    assert spectrally_normalized_weights(variables) == weights


def test_weights_start_orthogonal():
  generator, _ = _build(width=16, latent_dim=8)
  params = generator.init(jax.random.key(0), jnp.zeros((1, 8)), jnp.zeros((1,), jnp.int32),
                          train=False)['params']
  kernel = np.asarray(params['GBlock_0']['Conv_0']['kernel']).reshape(-1, 16)  # [144, 16]
  np.testing.assert_allclose(kernel.T @ kernel, np.eye(16), atol=1e-5)
  dense = np.asarray(params['Dense_0']['kernel'])  # [2, 256]: orthonormal rows
  np.testing.assert_allclose(dense @ dense.T, np.eye(2), atol=1e-5)
