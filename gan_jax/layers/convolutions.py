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
"""
import functools
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Implementation = Literal['auto', 'matmul', 'xla']
IMPLEMENTATIONS = ('auto', 'matmul', 'xla')
_DIMENSION_NUMBERS = ('NHWC', 'HWIO', 'NHWC')


def _windows(x: jax.Array, size: int, stride: int, out_height: int,
             out_width: int) -> jax.Array:
  """[N, H, W, C] -> [N, out_height, out_width, size * size * C]: each window's taps, row-major."""
  # Materialised once: otherwise XLA fuses the producer (batch norm, activation) into every
  # window's slice and computes it size * size times.
  x = jax.lax.optimization_barrier(x)
  return jnp.concatenate(
      [x[:, i:i + stride * out_height:stride, j:j + stride * out_width:stride]
       for i in range(size) for j in range(size)], axis=-1)


def _pad(x: jax.Array, border: int = 1) -> jax.Array:
  return jnp.pad(x, ((0, 0), (border, border), (border, border), (0, 0)))


def _dot(a: jax.Array, b: jax.Array, contracting: tuple[tuple[int], tuple[int]],
         precision: Any) -> jax.Array:
  """a and b contracted over the given axes, accumulated and returned in float32.

  Asking for a float32 result of bfloat16 operands is what lets XLA:CPU keep a bf16 dot in
  bf16 (YNNPACK, with AMX or AVX-512 bf16 units): a bf16 dot with a bf16 result is
  computed in float32, 5x slower on a Sapphire Rapids core (README.md, Performance).
  """
  return jax.lax.dot_general(a, b, (contracting, ((), ())), precision=precision,
                             preferred_element_type=jnp.float32)


def _kernel_grad(rows: jax.Array, grads: jax.Array, precision: Any) -> jax.Array:
  """rows [..., K] and grads [..., N] -> rows^T grads [K, N] in float32, summed over all
  leading axes: a matmul's kernel gradient."""
  rows = rows.reshape(-1, rows.shape[-1])
  grads = grads.reshape(-1, grads.shape[-1])
  if rows.dtype == jnp.bfloat16:
    # XLA:CPU's bf16 dots run in bf16 only with the left operand's contraction last, and
    # XLA folds a plain transpose into the dot; a transpose through a unit axis is laid
    # out in memory instead (bf16 DCGAN-64 step 1.2x faster; in float32 it costs more).
    m, k = rows.shape
    return _dot(rows.reshape(m, k, 1).transpose(1, 2, 0).reshape(k, m), grads,
                ((1,), (0,)), precision)
  return _dot(rows, grads, ((0,), (0,)), precision)


def _vary_like(a: jax.Array, b: jax.Array) -> jax.Array:
  """a, marked as varying over the shard_map axes b varies over (for a custom VJP, whose
  cotangents must have their primals' types; the mark's transpose sums over devices)."""
  missing = tuple(sorted(jax.typeof(b).manual_axis_type.varying -
                         jax.typeof(a).manual_axis_type.varying))
  return jax.lax.pcast(a, missing, to='varying') if missing else a


def matmul(x: jax.Array, kernel: jax.Array, precision: Any = None) -> jax.Array:
  """x [..., K] @ kernel [K, N] in x's dtype, accumulated in float32, with gradients that
  are float32-accumulated matmuls of x's dtype too (see _dot)."""
  return _matmul(_vary_like(x, kernel), _vary_like(kernel, x), precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _matmul(x: jax.Array, kernel: jax.Array, precision: Any) -> jax.Array:
  return _dot(x, kernel, ((x.ndim - 1,), (0,)), precision).astype(x.dtype)


def _matmul_fwd(x, kernel, precision):
  return _matmul(x, kernel, precision), (x, kernel)


def _matmul_bwd(precision, residuals, dy):
  x, kernel = residuals
  dy = dy.astype(x.dtype)
  dx = _dot(dy, kernel, ((dy.ndim - 1,), (1,)), precision).astype(x.dtype)
  return dx, _kernel_grad(x, dy, precision).astype(kernel.dtype)


_matmul.defvjp(_matmul_fwd, _matmul_bwd)


def _down_patches(x: jax.Array) -> jax.Array:
  """[N, H, W, C] -> [N, H / 2, W / 2, 16 C]: the windows of a 4x4, stride-2, padding-1
  convolution."""
  n, h, w, c = x.shape
  return _windows(_pad(x), 4, 2, h // 2, w // 2)


def _up_taps(kernel: jax.Array) -> jax.Array:
  """[4, 4, cin, cout] -> [4 cin, 4 cout]: the transposed convolution's kernel as the
  sub-pixel matmul's, rows (s, r, ci) like 2x2 patches, columns (a, b, co)."""
  cin, cout = kernel.shape[2:]
  # Output row 2q - 1 + a reads padded input row q + s through kernel row 2 + a - 2s:
  # reversed rows split as [s, 1 - a]. Reversing and reshaping, not gathering, keeps it a
  # copy XLA fuses (a gather of the 8 MB kernel took 12 ms per use).
  taps = kernel[::-1, ::-1].reshape(2, 2, 2, 2, cin, cout)[:, ::-1, :, ::-1]  # [s, a, r, b]
  return taps.transpose(0, 2, 4, 1, 3, 5).reshape(4 * cin, 4 * cout)


def _up_from_subpixels(y: jax.Array) -> jax.Array:
  """[N, H + 1, W + 1, 4 C] sub-pixel blocks -> [N, 2H, 2W, C]: depth-to-space, cropped."""
  n, h1, w1, c4 = y.shape
  c = c4 // 4
  y = y.reshape(n, h1, w1, 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return y.reshape(n, 2 * h1, 2 * w1, c)[:, 1:-1, 1:-1]


def _up_patches(x: jax.Array) -> jax.Array:
  """[N, H, W, C] -> [N, H + 1, W + 1, 4 C]: the 2x2 windows of x padded by one."""
  n, h, w, c = x.shape
  return _windows(_pad(x), 2, 1, h + 1, w + 1)


def up_conv_matmul(x: jax.Array, kernel: jax.Array, precision: Any = None) -> jax.Array:
  """UpConv's function as one matmul over 2x2 windows and a depth-to-space (UpConv)."""
  return _up_from_subpixels(matmul(_up_patches(x), _up_taps(kernel), precision))


def down_conv_matmul(x: jax.Array, kernel: jax.Array, precision: Any = None) -> jax.Array:
  """DownConv's function as one matmul over 4x4 windows, with a custom gradient."""
  return _down_conv_matmul(_vary_like(x, kernel), _vary_like(kernel, x), precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _down_conv_matmul(x: jax.Array, kernel: jax.Array, precision: Any) -> jax.Array:
  return _down_conv_matmul_fwd(x, kernel, precision)[0]


def _down_conv_matmul_fwd(x, kernel, precision):
  patches = _down_patches(x)
  y = _dot(patches, kernel.reshape(-1, kernel.shape[-1]), ((3,), (0,)), precision)
  return y.astype(x.dtype), (patches, kernel)


def _down_conv_matmul_bwd(precision, residuals, dy):
  """The kernel gradient is the windows' matmul's. The input gradient is the transposed
  convolution of dy (the kernel's channels swapped), in whichever of two forms is faster
  (measured on XLA:CPU, README.md): UpConv's sub-pixel matmul on the small map, whose
  4x-channel patches of dy are half the size of autodiff's window gradients, or autodiff's
  16 window gradients padded and summed at full size. The sub-pixel form costs
  (s + 1)^2 / s^2 of the work on an s x s map and has only 4 cin columns, so it pays in
  float32 on maps of 16 x 16 or more and in bf16 (whose matmuls are fast and whose padded
  sums are not) from 16 input channels on."""
  patches, kernel = residuals
  dtype = patches.dtype
  dy = dy.astype(dtype)
  n, s, _, cin16 = patches.shape
  cin = cin16 // 16
  dkernel = _kernel_grad(patches, dy, precision).reshape(kernel.shape)
  if cin >= 16 and (dtype == jnp.bfloat16 or s >= 16):
    taps = _up_taps(kernel.swapaxes(2, 3).astype(dtype))
    dx = _up_from_subpixels(_dot(_up_patches(dy), taps, ((3,), (0,)), precision))
  else:
    dpatches = _dot(dy, kernel.reshape(cin16, -1).astype(dtype), ((3,), (1,)), precision)
    x = _vary_like(jnp.zeros((n, 2 * s, 2 * patches.shape[2], cin), dtype), dy)
    dx, = jax.vjp(_down_patches, x)[1](dpatches.astype(dtype))
  return dx.astype(dtype), dkernel.astype(kernel.dtype)


_down_conv_matmul.defvjp(_down_conv_matmul_fwd, _down_conv_matmul_bwd)


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
      y = down_conv_matmul(x, kernel, self.precision)
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
      y = up_conv_matmul(x, kernel, self.precision)
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
  patches = _windows(x, size, stride, (h - size) // stride + 1, (w - size) // stride + 1)
  return matmul(patches, kernel.reshape(size * size * cin, features), precision)


def _conv_stride_1(x: jax.Array, kernel: jax.Array, border: int,
                   implementation: Implementation, precision: Any) -> jax.Array:
  """x padded with `border` zeros, convolved with the kernel where it fits, stride 1."""
  n, h, w, cin = x.shape
  size, features = kernel.shape[0], kernel.shape[-1]
  implementation = _resolve_stride_1(implementation, size, features, h * w)
  chunk = max(1, -(-KERNEL_GRAD_POSITIONS // (h * w)))
  if implementation == 'matmul':
    out_height, out_width = h + 2 * border - size + 1, w + 2 * border - size + 1
    patches = _windows(_pad(x, border), size, 1, out_height, out_width) if size > 1 else x
    return matmul(patches, kernel.reshape(size * size * cin, features), precision)
  if implementation == 'chunked' and chunk < n:
    return _xla_conv_chunked(x, kernel, border, precision, chunk)
  return _xla_conv(x, kernel, border, precision)
