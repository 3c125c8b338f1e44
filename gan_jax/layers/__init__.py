"""Layers the model families share, by concern: convolutions (XLA's, or as matmuls over
patches: layers.patches) and the ResNet families' conditioning and attention."""
from gan_jax.layers.conditioning import (ConditionalBatchNorm, ProjectionHead, SelfAttention,
                                         maybe_spectral_norm)
from gan_jax.layers.convolutions import (IMPLEMENTATIONS, KERNEL_GRAD_POSITIONS, Conv, DownConv,
                                         Implementation, UpConv)

__all__ = ['IMPLEMENTATIONS', 'KERNEL_GRAD_POSITIONS', 'ConditionalBatchNorm', 'Conv',
           'DownConv', 'Implementation', 'ProjectionHead', 'SelfAttention', 'UpConv',
           'maybe_spectral_norm']
