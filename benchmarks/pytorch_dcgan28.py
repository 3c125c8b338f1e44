r"""Trains the TensorFlow tutorial's 28x28 DCGAN in PyTorch for a time budget; saves samples.

  python benchmarks/pytorch_dcgan28.py --minutes 15 --snapshot_minutes 5,10 \
      --output runs/pytorch_dcgan28/samples.npy

Run it with a Python that has torch (benchmarks/compare.sh makes such a virtual
environment). It trains on the Fashion-MNIST training images for `--minutes` of wall-clock
time (reading the data counts), then writes `--num_samples` images from the generator in
eval mode as float32 NHWC [N, 28, 28, 1] in [0, 1], the format `python -m gan_jax.sample`
writes, so gan_jax's evaluator can score this run beside gan_jax's own. At each of
`--snapshot_minutes` it writes the same latents' images the same way beside `--output`
(samples_5min.npy, samples_10min.npy), with the clock stopped while it does, so that
benchmarks/quality_compare.sh can score both frameworks at equal wall clock. It prints one
JSON line at the end, with each snapshot's steps and minutes of training.

The models, their initialisation, the loss and the training step are those of the
TensorFlow DCGAN tutorial (tensorflow.org/tutorials/generative/dcgan), with the Keras 2
defaults it ran under:
  * G: Dense(7*7*256, no bias) -> BN -> LeakyReLU -> reshape -> ConvT(128, 5, stride 1)
    -> BN -> LeakyReLU -> ConvT(64, 5, stride 2) -> BN -> LeakyReLU -> ConvT(1, 5,
    stride 2) -> tanh; every ConvT 'same' and without bias. Latents: 100-d N(0, 1).
  * D: Conv(64, 5, stride 2, 'same') -> LeakyReLU -> Dropout(0.3) -> Conv(128, 5,
    stride 2, 'same') -> LeakyReLU -> Dropout(0.3) -> Flatten -> Dense(1), a logit.
  * LeakyReLU slope 0.3 (Keras 2's default alpha); BatchNormalization momentum 0.99 and
    epsilon 1e-3 (PyTorch momentum 0.01); Glorot-uniform kernels, zero biases, BN scale 1
    and offset 0.
  * TensorFlow's 'same' padding exactly: for the stride-2 convolutions it pads 1 before and
    2 after (PyTorch's symmetric padding=2 would shift the taps by a pixel), and the stride-2
    transposed convolutions are their exact adjoints (padding=1, then the 29th row and
    column cropped), not ConvTranspose2d(padding=2, output_padding=1), which is the same
    shape but a pixel off.
  * Loss: non-saturating, binary cross-entropy on logits (D: real -> 1, fake -> 0; G:
    fake -> 1). One step, as the tutorial's `train_step`: one fresh latent batch, one
    generator pass, D on the real and on the fake batch, both losses from those outputs,
    each network's gradient of its own loss (G's through the not yet updated D, with the
    same dropout masks), then both Adam updates.
What differs, on purpose (from gan_jax's issue "Evaluation", item 6):
  * Adam(2e-4, betas=(0.5, 0.999)) and batch 64, where the tutorial uses Adam(1e-4) with
    Keras' betas (0.9, 0.999) and batch 256.
  * Fashion-MNIST instead of MNIST, shuffled each epoch by a seeded numpy generator, the
    last partial batch dropped (the tutorial keeps it); a wall-clock budget, not 50 epochs.
What differs because it cannot be copied exactly:
  * Adam's epsilon is 1e-7 as in Keras, but Keras adds it to sqrt(v) before the bias
    correction and PyTorch after: the two agree once 1 - 0.999**t is near 1.
  * BN's running variance: PyTorch keeps the unbiased batch variance (n / (n - 1)), Keras'
    BN after the Dense layer the biased one; at batch 64 they differ by 1.6%.
  * Reshape and Flatten order: Keras is NHWC, PyTorch NCHW, so the Dense layers' units are
    permuted relative to Keras'; under random initialisation that is the same model.
  * Random numbers (initialisation, latents, dropout, shuffling) are PyTorch's and numpy's.

This file imports only torch, numpy and the standard library; gan_jax never imports it.
"""
import argparse
import json
import sys
import time

import numpy as np

try:
  import torch
  from torch import nn
  from torch.nn import functional as F
except ImportError:
  sys.exit('Error: PyTorch is not installed in this Python; run benchmarks/compare.sh (it '
           'installs torch in its own virtual environment) or `pip install torch` elsewhere.')

# Beside this file: its folder is on sys.path.
from pytorch_dcgan import select_device
from torch_training import (EpochBatches, add_training_arguments, check_training_arguments,
                            load_images, train_for_minutes, training_result)

NZ = 100  # Latent size, the tutorial's noise_dim.
LR = 2e-4
BETAS = (0.5, 0.999)
ADAM_EPS = 1e-7  # Keras' default epsilon.
LEAKY_SLOPE = 0.3  # Keras 2's LeakyReLU() default alpha.
BN_MOMENTUM = 0.01  # Keras momentum 0.99, as PyTorch counts it.
BN_EPS = 1e-3  # Keras' default epsilon.
DROPOUT = 0.3


def keras_init(m: nn.Module) -> None:
  """Keras' defaults: Glorot-uniform kernels, zero biases, BN scale 1 and offset 0."""
  if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
    # Glorot-uniform depends on fan_in + fan_out only, so PyTorch's (in, out) order for
    # ConvTranspose2d weights gives Keras' bound.
    nn.init.xavier_uniform_(m.weight)
    if m.bias is not None:
      nn.init.zeros_(m.bias)
  elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
    nn.init.ones_(m.weight)
    nn.init.zeros_(m.bias)


class SameConv2d(nn.Conv2d):
  """Keras Conv2D(padding='same'), stride 2, 5x5: TensorFlow pads 1 before and 2 after."""

  def __init__(self, in_channels: int, out_channels: int):
    super().__init__(in_channels, out_channels, 5, stride=2, padding=0)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return super().forward(F.pad(x, (1, 2, 1, 2)))


class SameConvTranspose2d(nn.ConvTranspose2d):
  """Keras Conv2DTranspose(padding='same'), stride 2, 5x5, no bias: H x W -> 2H x 2W.

  TensorFlow's transposed convolution is the adjoint of its 'same' convolution (which pads
  1 before and 2 after), so input pixel i reaches outputs 2i - 1 + k, k = 0..4: padding=1
  gives those, and the one extra row and column at the end are cropped.
  """

  def __init__(self, in_channels: int, out_channels: int):
    super().__init__(in_channels, out_channels, 5, stride=2, padding=1, bias=False)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    height, width = x.shape[-2:]
    return super().forward(x)[..., :2 * height, :2 * width]


class Generator(nn.Module):
  """The tutorial's make_generator_model: 100-d latents to 28x28x1 images in [-1, 1]."""

  def __init__(self):
    super().__init__()
    self.dense = nn.Sequential(
        nn.Linear(NZ, 7 * 7 * 256, bias=False),
        nn.BatchNorm1d(7 * 7 * 256, eps=BN_EPS, momentum=BN_MOMENTUM),
        nn.LeakyReLU(LEAKY_SLOPE),
    )
    self.convs = nn.Sequential(
        # 256 x 7 x 7
        nn.ConvTranspose2d(256, 128, 5, stride=1, padding=2, bias=False),
        nn.BatchNorm2d(128, eps=BN_EPS, momentum=BN_MOMENTUM),
        nn.LeakyReLU(LEAKY_SLOPE),
        # 128 x 7 x 7
        SameConvTranspose2d(128, 64),
        nn.BatchNorm2d(64, eps=BN_EPS, momentum=BN_MOMENTUM),
        nn.LeakyReLU(LEAKY_SLOPE),
        # 64 x 14 x 14
        SameConvTranspose2d(64, 1),
        nn.Tanh(),
        # 1 x 28 x 28
    )

  def forward(self, z: torch.Tensor) -> torch.Tensor:
    return self.convs(self.dense(z).view(-1, 256, 7, 7))


class Discriminator(nn.Module):
  """The tutorial's make_discriminator_model: one logit per 28x28x1 image."""

  def __init__(self):
    super().__init__()
    self.main = nn.Sequential(
        # 1 x 28 x 28
        SameConv2d(1, 64),
        nn.LeakyReLU(LEAKY_SLOPE),
        nn.Dropout(DROPOUT),
        # 64 x 14 x 14
        SameConv2d(64, 128),
        nn.LeakyReLU(LEAKY_SLOPE),
        nn.Dropout(DROPOUT),
        # 128 x 7 x 7
        nn.Flatten(),
        nn.Linear(128 * 7 * 7, 1),
    )

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.main(x).squeeze(1)


def train(args: argparse.Namespace, device: torch.device) -> dict:
  """Trains for args.minutes (data loading included), writes the samples, returns a dict."""
  start = time.perf_counter()
  torch.manual_seed(args.seed)
  rng = np.random.default_rng(args.seed)
  # One set of latents, from their own seeded stream, for the snapshots and the final samples.
  latents = torch.randn(args.num_samples, NZ, generator=torch.Generator().manual_seed(args.seed))

  images = load_images(args.data_dir)
  # uint8 on the device; each batch is scaled to [-1, 1] as the tutorial does.
  batches = EpochBatches(torch.from_numpy(images.copy()).to(device).unsqueeze(1),
                         args.batch_size, rng)

  net_g = Generator().to(device)
  net_g.apply(keras_init)
  net_d = Discriminator().to(device)
  net_d.apply(keras_init)
  params_g = list(net_g.parameters())
  params_d = list(net_d.parameters())
  optimizer_g = torch.optim.Adam(params_g, lr=LR, betas=BETAS, eps=ADAM_EPS)
  optimizer_d = torch.optim.Adam(params_d, lr=LR, betas=BETAS, eps=ADAM_EPS)
  ones = torch.ones(args.batch_size, device=device)
  zeros = torch.zeros(args.batch_size, device=device)

  def train_step() -> tuple[torch.Tensor, torch.Tensor]:
    """The tutorial's train_step: both losses from one pass, then both updates."""
    real = (batches.next().float() - 127.5) / 127.5
    noise = torch.randn(args.batch_size, NZ, device=device)
    fake = net_g(noise)
    real_output = net_d(real)
    fake_output = net_d(fake)
    loss_g = F.binary_cross_entropy_with_logits(fake_output, ones)
    loss_d = (F.binary_cross_entropy_with_logits(real_output, ones)
              + F.binary_cross_entropy_with_logits(fake_output, zeros))
    optimizer_g.zero_grad(set_to_none=True)
    optimizer_d.zero_grad(set_to_none=True)
    # Each loss's gradient for its own network only, like the tutorial's two tapes.
    loss_g.backward(inputs=params_g, retain_graph=True)
    loss_d.backward(inputs=params_d)
    optimizer_g.step()
    optimizer_d.step()
    return loss_d.detach(), loss_g.detach()

  net_d.train()
  run = train_for_minutes(args, device, start, net_g, latents, train_step)
  return training_result(args, run, 'dcgan28', batches.epochs, args.batch_size, device)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
  add_training_arguments(parser, 'runs/pytorch_dcgan28/samples.npy')
  args = parser.parse_args()
  check_training_arguments(parser, args)
  print(json.dumps(train(args, select_device(args.device, args.threads))))


if __name__ == '__main__':
  main()
