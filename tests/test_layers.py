"""Tests of gan_jax.layers against direct loops over the (transposed) convolution definitions."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import layers

IMPLEMENTATIONS = ('matmul', 'xla', 'auto')
# (batch, height, width, cin, cout)
SHAPES = [(1, 1, 1, 1, 1), (2, 3, 5, 3, 4), (3, 4, 4, 5, 2), (1, 6, 2, 2, 7)]


def reference_conv_transpose(x, kernel, bias=None):
  """torch.nn.ConvTranspose2d(k=4, stride=2, padding=1) by definition, NHWC.

  out[:, 2i - 1 + kh, 2j - 1 + kw] += x[:, i, j] @ kernel[kh, kw].
  """
  n, h, w, _ = x.shape
  out = np.zeros((n, 2 * h, 2 * w, kernel.shape[-1]))
  for i in range(h):
    for j in range(w):
      for kh in range(4):
        for kw in range(4):
          oh, ow = 2 * i - 1 + kh, 2 * j - 1 + kw
          if 0 <= oh < 2 * h and 0 <= ow < 2 * w:
            out[:, oh, ow] += x[:, i, j].astype(np.float64) @ kernel[kh, kw]
  return out if bias is None else out + bias


def reference_conv(x, kernel, bias=None):
  """torch.nn.Conv2d(k=4, stride=2, padding=1) by definition, NHWC.

  out[:, i, j] = sum over kh, kw of x[:, 2i - 1 + kh, 2j - 1 + kw] @ kernel[kh, kw].
  """
  n, h, w, _ = x.shape
  out = np.zeros((n, h // 2, w // 2, kernel.shape[-1]))
  for i in range(h // 2):
    for j in range(w // 2):
      for kh in range(4):
        for kw in range(4):
          ih, iw = 2 * i - 1 + kh, 2 * j - 1 + kw
          if 0 <= ih < h and 0 <= iw < w:
            out[:, i, j] += x[:, ih, iw].astype(np.float64) @ kernel[kh, kw]
  return out if bias is None else out + bias


def _random(shape, seed):
  return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _params(cin, cout, use_bias, seed):
  params = {'kernel': _random((4, 4, cin, cout), seed)}
  if use_bias:
    params['bias'] = _random((cout,), seed + 1)
  return {'params': params}


# (batch, height, width, cin, cout), even sides
DOWN_SHAPES = [(1, 2, 2, 1, 1), (2, 4, 6, 3, 4), (3, 8, 8, 5, 2), (1, 6, 2, 2, 17)]
REFERENCE_CASES = ([(layers.UpConv, reference_conv_transpose, shape) for shape in SHAPES]
                   + [(layers.DownConv, reference_conv, shape) for shape in DOWN_SHAPES])


@pytest.mark.parametrize('use_bias', [False, True])
@pytest.mark.parametrize('layer,reference,shape', REFERENCE_CASES)
def test_matches_reference(layer, reference, shape, use_bias):
  n, h, w, cin, cout = shape
  x = _random((n, h, w, cin), 0)
  params = _params(cin, cout, use_bias, 1)
  expected = reference(x, *params['params'].values())
  for implementation in IMPLEMENTATIONS:
    module = layer(cout, use_bias=use_bias, implementation=implementation)
    np.testing.assert_allclose(module.apply(params, x), expected, rtol=1e-5, atol=1e-5,
                               err_msg=implementation)


@pytest.mark.parametrize('layer,shape,scale', [
    (layers.UpConv, SHAPES[1], 2), (layers.UpConv, SHAPES[3], 2),
    (layers.DownConv, DOWN_SHAPES[1], 0.5), (layers.DownConv, DOWN_SHAPES[3], 0.5)])
def test_gradients_agree(layer, shape, scale):
  n, h, w, cin, cout = shape
  x = _random((n, h, w, cin), 0)
  params = _params(cin, cout, True, 1)
  cotangent = _random((n, int(scale * h), int(scale * w), cout), 3)

  def grads(implementation):
    module = layer(cout, implementation=implementation)
    loss = lambda p, x: jnp.sum(module.apply(p, x) * cotangent)
    return jax.jit(jax.grad(loss, argnums=(0, 1)))(params, x)

  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4),
               grads('matmul'), grads('xla'))


@pytest.mark.parametrize('use_bias', [False, True])
@pytest.mark.parametrize('implementation', IMPLEMENTATIONS)
def test_shapes_and_parameter_count(implementation, use_bias):
  cin, cout = 6, 5
  x = jnp.zeros((2, 7, 3, cin))
  module = layers.UpConv(cout, use_bias=use_bias, implementation=implementation)
  variables = module.init(jax.random.key(0), x)
  assert module.apply(variables, x).shape == (2, 14, 6, cout)
  assert variables['params']['kernel'].shape == (4, 4, cin, cout)
  count = sum(p.size for p in jax.tree.leaves(variables))
  assert count == 16 * cin * cout + use_bias * cout


@pytest.mark.parametrize('layer', [layers.UpConv, layers.DownConv])
@pytest.mark.parametrize('implementation', IMPLEMENTATIONS)
def test_mixed_precision(layer, implementation):
  x = jnp.ones((1, 4, 4, 3))
  module = layer(2, dtype=jnp.bfloat16, implementation=implementation)
  variables = module.init(jax.random.key(0), x)
  assert variables['params']['kernel'].dtype == jnp.float32
  assert module.apply(variables, x).dtype == jnp.bfloat16


@pytest.mark.parametrize('layer', [layers.UpConv, layers.DownConv])
def test_unknown_implementation(layer):
  with pytest.raises(ValueError, match='implementation'):
    layer(2, implementation='fft').init(jax.random.key(0), jnp.ones((1, 2, 2, 1)))


@pytest.mark.parametrize('layer', [layers.UpConv, layers.DownConv])
def test_auto_takes_matmuls_on_cpu_for_wide_layers_only(layer):
  x = jnp.ones((1, 4, 4, 8))

  def primitives(features):
    module = layer(features)
    jaxpr = jax.make_jaxpr(module.apply)(module.init(jax.random.key(0), x), x)
    return {equation.primitive.name for equation in jaxpr.eqns}

  assert jax.default_backend() == 'cpu'
  assert 'dot_general' in primitives(16) and 'conv_general_dilated' not in primitives(16)
  assert 'conv_general_dilated' in primitives(3)
