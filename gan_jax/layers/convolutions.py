"""The convolutions the model families share: DCGAN's strided DownConv and UpConv and the
ResNet families' stride-1 Conv, each as XLA's convolution or as one matmul over image patches.

Every convolution computes the same function either way, with the same parameters.
'xla' is XLA's convolution op, the fast choice where a convolution library backs
it (cuDNN, TPU). 'matmul' gathers each output's input window into one row
(im2col) and multiplies by the kernel once: on XLA:CPU the strided convolutions'
gradients run 2-4x slower than a matmul of the same size (the input gradient of
a strided conv convolves a zero-dilated input, 4x the work). 'auto' takes the
matmul on CPU for DownConv and UpConv with at least 16 output channels and 'xla'
otherwise: an RGB or grey output layer's matmul is too narrow to pay for its patches.
Stride-1 convolutions (Conv) differ on XLA:CPU: XLA's forward pass and input gradient
beat the matmul, but its kernel gradient slows down 3-6x once the batch outgrows the
cache, so 'auto' sums it over chunks of the batch (_resolve_stride_1 has the crossovers).
The matmul forms and their gradients are layers.patches'.
"""
import functools
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.layers import patches

Implementation = Literal['auto', 'matmul', 'xla']
IMPLEMENTATIONS = ('auto', 'matmul', 'xla')
_DIMENSION_NUMBERS = ('NHWC', 'HWIO', 'NHWC')


def _resolve(implementation: str, features: int) -> str:
  """'matmul' or 'xla' for `implementation` ('auto' decided by the backend and width)."""
  if implementation not in IMPLEMENTATIONS:
    raise ValueError(f'implementation must be one of {IMPLEMENTATIONS}, not {implementation!r}')
  if implementation == 'auto':
    return 'matmul' if jax.default_backend() == 'cpu' and features >= 16 else 'xla'
  return implementation


def _resolve_stride_1(implementation: str, size: int, features: int, positions: int) -> str:
  """Conv's 'matmul', 'xla' or 'chunked' (XLA's convolution, its kernel gradient over
  chunks of the batch) for `implementation`; 'auto' decided by the backend, kernel size,
  width and positions per feature map (the crossovers measured on XLA:CPU, README.md)."""
  resolved = _resolve(implementation, features)
  if implementation != 'auto' or jax.default_backend() != 'cpu':
    return resolved
  if size == 1:
    return 'matmul'  # a dot: as fast as XLA's 1x1 convolution with its gradients, or 3x
  if features <= 16:
    return 'xla'  # chunking a narrow layer's kernel gradient costs more than it saves
  return 'matmul' if positions <= 16 else 'chunked'  # at 2x2, XLA's is 13x slower


class _Conv4x4(nn.Module):
  """Parameters and dtype handling shared by DownConv and UpConv.

  Attributes:
    features: output channels.
    use_bias: whether to add a bias per output channel.
    implementation: 'auto', 'matmul' or 'xla'; same parameters, same function.
    dtype: the computation dtype; None infers it from inputs and parameters.
    param_dtype: the dtype of the parameters.
    precision: the `lax` precision of the convolution or matmul.
    kernel_init: initializer of the [4, 4, cin, features] kernel.
    bias_init: initializer of the bias.
  """
  features: int
  use_bias: bool = True
  implementation: Implementation = 'auto'
  dtype: Any = None
  param_dtype: Any = jnp.float32
  precision: Any = None
  kernel_init: nn.initializers.Initializer = nn.linear.default_kernel_init
  bias_init: nn.initializers.Initializer = nn.initializers.zeros_init()

  def _variables(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    kernel = self.param('kernel', self.kernel_init, (4, 4, x.shape[-1], self.features),
                        self.param_dtype)
    bias = (self.param('bias', self.bias_init, (self.features,), self.param_dtype)
            if self.use_bias else None)
    return nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)


class DownConv(_Conv4x4):
  """The DCGAN downsampling layer: a 4x4, stride-2, padding-1 convolution.

  Maps NHWC [N, H, W, cin] to [N, H / 2, W / 2, features] (H, W even), as PyTorch's
  `nn.Conv2d(cin, features, 4, stride=2, padding=1)` with `kernel[kh, kw, ci, co]`
  = `weight[co, ci, kh, kw]`.
  """

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x, kernel, bias = self._variables(x)
    if _resolve(self.implementation, self.features) == 'xla':
      y = jax.lax.conv_general_dilated(x, kernel, (2, 2), ((1, 1), (1, 1)),
                                       dimension_numbers=_DIMENSION_NUMBERS,
                                       precision=self.precision)
    else:
      y = patches.down_conv_matmul(x, kernel, self.precision)
    return y if bias is None else y + bias


class UpConv(_Conv4x4):
  """The DCGAN upsampling layer: a 4x4, stride-2, padding-1 transposed convolution.

  Maps NHWC [N, H, W, cin] to [N, 2H, 2W, features] exactly as PyTorch's
  `nn.ConvTranspose2d(cin, features, 4, stride=2, padding=1)`:
  out[o] = sum over input i and tap k with o = 2i - 1 + k of x[i] @ kernel[k]
  (per spatial axis). `kernel[kh, kw, ci, co]` is torch's `weight[ci, co, kh, kw]`;
  flax's `nn.ConvTranspose` keeps the same shape but spatially flipped.

  'matmul' uses the sub-pixel view (Shi et al. 2016, "Is the deconvolution layer
  the same as a convolutional layer?"): each 2x2 window of the padded input makes
  a 2x2 block of outputs, so one matmul to 4 * features channels and a
  depth-to-space give the output, with a one-pixel border to crop. That costs
  (H + 1)^2 / H^2 of the exact work: 1.56x at H = 4, 1.06x at H = 32.
  """

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x, kernel, bias = self._variables(x)
    if _resolve(self.implementation, self.features) == 'xla':
      # Input dilated by 2, then correlated with the flipped kernel: padding
      # 4 - 1 - 1 = 2 each side puts input i's tap k at 2i - 1 + k.
      y = jax.lax.conv_transpose(x, kernel[::-1, ::-1], (2, 2), ((2, 2), (2, 2)),
                                 dimension_numbers=_DIMENSION_NUMBERS, precision=self.precision)
    else:
      y = patches.up_conv_matmul(x, kernel, self.precision)
    return y if bias is None else y + bias


KERNEL_GRAD_POSITIONS = 2048  # Conv's CPU kernel gradient: chunks of at least this many positions


def _xla_conv(x: jax.Array, kernel: jax.Array, border: int, precision: Any) -> jax.Array:
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), ((border, border),) * 2,
                                      dimension_numbers=_DIMENSION_NUMBERS, precision=precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _xla_conv_chunked(x: jax.Array, kernel: jax.Array, border: int, precision: Any,
                      chunk: int) -> jax.Array:
  """_xla_conv, with the kernel gradient summed over batch chunks of `chunk` examples.

  XLA's kernel gradient is a convolution whose window is the whole feature map; on
  XLA:CPU it slows down 3-6x once the batch's activations outgrow the cache (D's first
  block at batch 64, 32x32x32: 250 ms alone, 40 ms in chunks of 2 images). The forward
  pass and the input gradient are XLA's own.
  """
  return _xla_conv(x, kernel, border, precision)


def _xla_conv_chunked_fwd(x, kernel, border, precision, chunk):
  return _xla_conv(x, kernel, border, precision), (x, kernel)


def _xla_conv_chunked_bwd(border, precision, chunk, residuals, dy):
  x, kernel = residuals
  dx = jax.vjp(lambda x: _xla_conv(x, kernel, border, precision), x)[1](dy)[0]
  dkernel = jnp.zeros(kernel.shape, jnp.float32)
  for start in range(0, x.shape[0], chunk):
    _, vjp = jax.vjp(lambda k: _xla_conv(x[start:start + chunk], k, border, precision), kernel)
    dkernel += vjp(dy[start:start + chunk])[0].astype(jnp.float32)
  return dx, dkernel.astype(kernel.dtype)


_xla_conv_chunked.defvjp(_xla_conv_chunked_fwd, _xla_conv_chunked_bwd)


class Conv(nn.Module):
  """A stride-1 'same' convolution with an odd square kernel: a drop-in for flax's
  `nn.Conv(features, (k, k), padding='SAME')` on NHWC [N, H, W, cin] inputs.

  Its parameters are nn.Conv's ('kernel' [k, k, cin, features], 'bias' [features]), so
  checkpoints, parameter paths and nn.SpectralNorm treat the two alike. 'matmul' is one
  matmul over the padded input's k x k windows (a 1x1 convolution is the matmul alone);
  'xla' is XLA's convolution with XLA's gradients. 'auto' on CPU: 1x1 and maps of at most
  4x4 as the matmul, layers of at most 16 output channels as 'xla', others as XLA's
  convolution with the kernel gradient summed over chunks of the batch of at least
  KERNEL_GRAD_POSITIONS positions (2x faster steps for the ResNet CPU preset than
  'xla'); elsewhere 'xla'.

  Attributes:
    features: output channels.
    kernel_size: k (odd), or nn.Conv's (k, k).
    use_bias: whether to add a bias per output channel.
    implementation: 'auto', 'matmul' or 'xla'; same parameters, same function.
    dtype: the computation dtype; None infers it from inputs and parameters.
    param_dtype: the dtype of the parameters.
    precision: the `lax` precision of the convolution or matmul.
    kernel_init: initializer of the [k, k, cin, features] kernel.
    bias_init: initializer of the bias.
  """
  features: int
  kernel_size: int | tuple[int, int] = 3
  use_bias: bool = True
  implementation: Implementation = 'auto'
  dtype: Any = None
  param_dtype: Any = jnp.float32
  precision: Any = None
  kernel_init: nn.initializers.Initializer = nn.linear.default_kernel_init
  bias_init: nn.initializers.Initializer = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    size = self.kernel_size if isinstance(self.kernel_size, int) else self.kernel_size[0]
    if size % 2 != 1 or tuple(np.atleast_1d(self.kernel_size)) not in ((size,), (size, size)):
      raise ValueError(f'kernel_size must be odd and square, got {self.kernel_size}')
    kernel = self.param('kernel', self.kernel_init, (size, size, x.shape[-1], self.features),
                        self.param_dtype)
    bias = (self.param('bias', self.bias_init, (self.features,), self.param_dtype)
            if self.use_bias else None)
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    y = conv_same(x, kernel, self.implementation, self.precision)
    return y if bias is None else y + bias


def conv_same(x: jax.Array, kernel: jax.Array, implementation: Implementation = 'auto',
              precision: Any = None) -> jax.Array:
  """x [N, H, W, cin] convolved with an odd square kernel [k, k, cin, cout], stride 1,
  'same' padding, without bias: Conv's function, for layers that make their own kernel
  (equalized learning rate, StyleGAN2's modulation)."""
  return _conv_stride_1(x, kernel, kernel.shape[0] // 2, implementation, precision)


def conv_valid(x: jax.Array, kernel: jax.Array, stride: int = 1,
               implementation: Implementation = 'auto', precision: Any = None) -> jax.Array:
  """x [N, H, W, cin] convolved with a square kernel [k, k, cin, cout] where it fits (no
  padding), at every `stride`-th position, without bias: for layers that pad and filter
  their input themselves (StyleGAN2's resampling convolutions). 'auto' decides as Conv's
  at stride 1 and as DownConv's at stride 2."""
  if stride == 1:
    return _conv_stride_1(x, kernel, 0, implementation, precision)
  n, h, w, cin = x.shape
  size, features = kernel.shape[0], kernel.shape[-1]
  if _resolve(implementation, features) == 'xla':
    return jax.lax.conv_general_dilated(x, kernel, (stride, stride), 'VALID',
                                        dimension_numbers=_DIMENSION_NUMBERS,
                                        precision=precision)
  rows = patches.windows(x, size, stride, (h - size) // stride + 1, (w - size) // stride + 1)
  return patches.matmul(rows, kernel.reshape(size * size * cin, features), precision)


def _conv_stride_1(x: jax.Array, kernel: jax.Array, border: int,
                   implementation: Implementation, precision: Any) -> jax.Array:
  """x padded with `border` zeros, convolved with the kernel where it fits, stride 1."""
  n, h, w, cin = x.shape
  size, features = kernel.shape[0], kernel.shape[-1]
  implementation = _resolve_stride_1(implementation, size, features, h * w)
  chunk = max(1, -(-KERNEL_GRAD_POSITIONS // (h * w)))
  if implementation == 'matmul':
    out_height, out_width = h + 2 * border - size + 1, w + 2 * border - size + 1
    rows = (patches.windows(patches.pad(x, border), size, 1, out_height, out_width)
            if size > 1 else x)
    return patches.matmul(rows, kernel.reshape(size * size * cin, features), precision)
  if implementation == 'chunked' and chunk < n:
    return _xla_conv_chunked(x, kernel, border, precision, chunk)
  return _xla_conv(x, kernel, border, precision)
