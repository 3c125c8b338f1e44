"""StyleGAN2's resampling (layers/resample.py) and its resampling convolutions, against
direct loops over the definitions of NVlabs/stylegan2-ada-pytorch's upfirdn2d
(torch_utils/ops/upfirdn2d.py, `_upfirdn2d_ref`) and conv2d_resample."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.layers import karras, resample, style


def upfirdn2d_loop(x, taps, up, down, padding, gain):
  """One channel [H, W], as the reference defines it: insert up - 1 zeros after each pixel,
  pad (negative: crop), convolve with the 2-D filter (normalised, times gain) where it fits,
  keep every down-th pixel."""
  f = np.outer(taps, taps) / np.sum(np.outer(taps, taps)) * gain
  h, w = x.shape
  upsampled = np.zeros((h * up, w * up))
  upsampled[::up, ::up] = x
  before, after = padding
  grow = max(before, 0), max(after, 0)
  padded = np.pad(upsampled, (grow, grow))
  padded = padded[max(-before, 0):padded.shape[0] - max(-after, 0),
                  max(-before, 0):padded.shape[1] - max(-after, 0)]
  fh, fw = f.shape
  out = np.zeros(((padded.shape[0] - fh) // down + 1, (padded.shape[1] - fw) // down + 1))
  for i in range(out.shape[0]):
    for j in range(out.shape[1]):
      for a in range(fh):
        for b in range(fw):  # a convolution: the filter runs backwards
          out[i, j] += padded[i * down + a, j * down + b] * f[fh - 1 - a, fw - 1 - b]
  return out


def conv_valid_loop(x, kernel, stride):
  """[H, W, cin] correlated with [k, k, cin, cout] where it fits, every stride-th position."""
  k = kernel.shape[0]
  rows, cols = (x.shape[0] - k) // stride + 1, (x.shape[1] - k) // stride + 1
  out = np.zeros((rows, cols, kernel.shape[-1]))
  for i in range(rows):
    for j in range(cols):
      window = x[i * stride:i * stride + k, j * stride:j * stride + k]
      out[i, j] = np.einsum('abc,abco->o', window, kernel)
  return out


def _per_channel(fn, x):
  return np.stack([fn(x[..., c]) for c in range(x.shape[-1])], axis=-1)


@pytest.mark.parametrize('side', [(4, 4), (5, 7), (7, 4)], ids=lambda s: f'{s[0]}x{s[1]}')
@pytest.mark.parametrize('up,down,padding,gain', [
    (2, 1, (2, 1), 4.0),  # upsample2d
    (1, 2, (1, 1), 1.0),  # downsample2d
    (2, 2, (2, 1), 4.0),  # both
    (2, 1, (3, 2), 4.0),  # G's 3x3 upsampling convolution's filter
    (1, 1, (2, 2), 1.0),  # D's 3x3 downsampling convolution's filter
    (2, 3, (-1, 2), 2.0),  # cropping, another factor and gain
], ids=['up', 'down', 'up_down', 'up_conv_pad', 'down_conv_pad', 'crop'])
def test_upfirdn2d_matches_a_loop_over_its_definition(side, up, down, padding, gain):
  x = np.asarray(jax.random.normal(jax.random.PRNGKey(0), (2,) + side + (3,)))
  taps = (1.0, 2.0, 5.0, 3.0)  # asymmetric: convolution and correlation differ
  out = resample.upfirdn2d(jnp.asarray(x), taps, up, down, padding, gain)
  expected = np.stack([_per_channel(lambda c: upfirdn2d_loop(c, taps, up, down, padding, gain),
                                    example) for example in x])
  assert out.shape == expected.shape
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_upsampling_zero_pads_the_border():
  # Per axis, [1, 3, 3, 1] / 4 on 1, 0, 1, 0 padded with zeros: 3/4 at the border, 1 inside
  # (jax.image.resize's bilinear upsampling renormalises to 1 everywhere).
  edge = np.array([0.75, 1.0, 1.0, 0.75])
  np.testing.assert_allclose(resample.upsample_2x(jnp.ones((1, 2, 2, 1)))[0, ..., 0],
                             np.outer(edge, edge), rtol=1e-6)


@pytest.mark.parametrize('size', [1, 3])
@pytest.mark.parametrize('implementation', ['xla', 'matmul'])
def test_downsampling_conv_blurs_then_convolves_at_stride_2_then_adds_the_bias(
    size, implementation):
  layer = karras.EqualizedConv(4, size, gain=1.0, implementation=implementation, down=2)
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3))
  variables = layer.init(jax.random.PRNGKey(1), x)
  bias = jax.random.normal(jax.random.PRNGKey(2), (4,))
  variables = {'params': {**variables['params'], 'bias': bias}}
  kernel = np.asarray(variables['params']['kernel']) / np.sqrt(size * size * 3)
  # conv2d_resample(down=2): padding k // 2 + 1 on each side for the 4-tap filter.
  pad = size // 2 + 1
  expected = np.stack([
      conv_valid_loop(_per_channel(lambda c: upfirdn2d_loop(c, resample.BLUR_TAPS, 1, 1,
                                                            (pad, pad), 1.0), example),
                      kernel, 2) for example in np.asarray(x)]) + np.asarray(bias)
  out = layer.apply(variables, x)
  assert out.shape == (2, 4, 4, 4)
  np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('implementation', ['xla', 'matmul'])
def test_upsampling_modulated_conv_is_conv2d_resamples_generic_path(implementation):
  layer = style.ModulatedConv(4, 3, up=2, implementation=implementation)
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 5, 3))
  w = jax.random.normal(jax.random.PRNGKey(1), (2, 6))
  variables = layer.init(jax.random.PRNGKey(2), x, w)
  params = variables['params']
  styles = np.asarray(w @ (params['style']['kernel'] / np.sqrt(6)) + params['style']['bias'])
  kernel = np.asarray(params['kernel'])
  expected = []
  for example, s in zip(np.asarray(x), styles):
    # Upsampled, padded once by (3, 2) for the filter and the kernel, filtered with gain 4,
    # then convolved where the kernel fits; demodulated per output channel.
    filtered = _per_channel(lambda c: upfirdn2d_loop(c, resample.BLUR_TAPS, 2, 1, (3, 2), 4.0),
                            example * s)
    weights = kernel * s[None, None, :, None]
    expected.append(conv_valid_loop(filtered, kernel, 1)
                    / np.sqrt(np.sum(weights ** 2, axis=(0, 1, 2)) + 1e-8))
  out = layer.apply(variables, x, w)
  assert out.shape == (2, 10, 10, 4)
  np.testing.assert_allclose(out, np.stack(expected), rtol=1e-4, atol=1e-5)
