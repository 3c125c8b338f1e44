"""The PyTorch peers' training for a wall-clock budget on Fashion-MNIST, with snapshots.

benchmarks/pytorch_dcgan28.py (the TensorFlow tutorial's DCGAN) and
benchmarks/mimicry_sngan.py (Mimicry's SNGAN-32) train their own networks with their own
step through these: the training images, epoch batches, the timed loop that writes samples
at each snapshot minute with its clock stopped, the flags of such a run and its JSON line.
Only torch, numpy and the standard library; gan_jax never imports it.
"""
import argparse
import gzip
import os
import sys
import time

import numpy as np
import torch
from torch import nn

# Beside this file: its folder is on sys.path.
from pytorch_dcgan import positive, synchronize

TRAIN_FILE = 'train-images-idx3-ubyte.gz'
IMAGES_MAGIC = 2051  # IDX: uint8 data with 3 dimensions.
IMAGE_SIZE = 28  # Fashion-MNIST's side


def load_images(data_dir: str) -> np.ndarray:
  """Reads the Fashion-MNIST training images: uint8 [60000, 28, 28]."""
  path = os.path.join(data_dir, TRAIN_FILE)
  if not os.path.isfile(path):
    sys.exit(f'Error: {path} not found; install Fashion-MNIST with `sudo apt-get install '
             'dataset-fashion-mnist`, or pass --data_dir with a folder holding '
             f'{TRAIN_FILE}.')
  with gzip.open(path, 'rb') as f:
    data = f.read()
  magic, count, rows, cols = (int(v) for v in np.frombuffer(data, '>u4', count=4))
  if magic != IMAGES_MAGIC or (rows, cols) != (IMAGE_SIZE, IMAGE_SIZE) or (
      len(data) != 16 + count * rows * cols):
    sys.exit(f'Error: {path} is not an IDX file of 28x28 uint8 images (magic {magic}, '
             f'{count} x {rows} x {cols}, {len(data)} bytes).')
  return np.frombuffer(data, np.uint8, offset=16).reshape(count, rows, cols)


def snapshot_path(output: str, minutes: float) -> str:
  """Where the samples at `minutes` go: beside `output`, e.g. samples.npy -> samples_5min.npy."""
  return f'{os.path.splitext(output)[0]}_{minutes:g}min.npy'


def write_samples(net_g: nn.Module, latents: torch.Tensor, path: str, sample_batch_size: int,
                  device: torch.device) -> None:
  """Writes net_g's images of `latents` to `path` as float32 NHWC in [0, 1].

  Eval mode: BN's running statistics, as the tutorial's generate_and_save_images; the caller
  puts net_g back in train mode to train on.
  """
  net_g.eval()
  with torch.no_grad():
    samples = np.concatenate([
        net_g(latents[i:i + sample_batch_size].to(device)).cpu().numpy()
        for i in range(0, len(latents), sample_batch_size)])
  samples = np.clip((samples.transpose(0, 2, 3, 1) + 1.0) / 2.0, 0.0, 1.0).astype(np.float32)
  if os.path.dirname(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb') as f:  # np.save(path) would append '.npy' to other names.
    np.save(f, samples)


class EpochBatches:
  """Batches of `images` (uint8 [N, ...] on the device) as an epoch loop draws them: shuffled
  anew each epoch by the seeded numpy generator `rng`, the last partial batch dropped."""

  def __init__(self, images: torch.Tensor, batch_size: int, rng: np.random.Generator):
    self.num_batches = len(images) // batch_size
    if self.num_batches < 1:
      sys.exit(f'Error: {len(images)} images are fewer than one batch of {batch_size}.')
    self.taken = 0
    self._images, self._batch_size, self._rng = images, batch_size, rng

  def next(self) -> torch.Tensor:
    """The next batch, uint8 as stored."""
    i = self.taken % self.num_batches
    if i == 0:  # a new epoch
      self._order = torch.from_numpy(self._rng.permutation(len(self._images))).to(
          self._images.device)
    self.taken += 1
    return self._images[self._order[i * self._batch_size:(i + 1) * self._batch_size]]

  @property
  def epochs(self) -> float:
    return self.taken / self.num_batches


def train_for_minutes(args: argparse.Namespace, device: torch.device, start: float,
                      net_g: nn.Module, latents: torch.Tensor, train_step) -> dict:
  """Calls `train_step()` until args.minutes of wall clock have passed since `start` (the
  clock reading before the data were read: reading them counts), then writes the samples of
  `latents` to args.output. At each of args.snapshot_minutes it also writes them
  (snapshot_path); the clock stops while it does, so a snapshot costs the run no training
  time. Returns {steps, minutes, train_seconds, load_seconds, snapshot_seconds, snapshots,
  last}: `last` is the last train_step()'s result, train_seconds the training loop's time.
  """
  paused = 0.0  # seconds spent writing snapshots, left out of the budget and the rates

  def trained() -> float:
    return time.perf_counter() - start - paused

  net_g.train()
  steps = 0
  last = None
  snapshots = []
  train_start = trained()
  while True:
    # Each mark's snapshot comes at the first step boundary at or after it.
    for mark in args.snapshot_minutes[len(snapshots):]:
      if trained() < 60.0 * mark:
        break
      synchronize(device)  # steps still queued on a GPU count as training
      snapshots.append({'minutes': mark, 'steps': steps, 'train_minutes': trained() / 60.0,
                        'output': snapshot_path(args.output, mark)})
      pause_start = time.perf_counter()
      write_samples(net_g, latents, snapshots[-1]['output'], args.sample_batch_size, device)
      net_g.train()
      paused += time.perf_counter() - pause_start
    if trained() >= 60.0 * args.minutes:
      break
    last = train_step()
    steps += 1
  synchronize(device)
  end = trained()

  write_samples(net_g, latents, args.output, args.sample_batch_size, device)
  return {'steps': steps, 'minutes': end / 60.0,  # of training: snapshot writing left out
          'train_seconds': max(end - train_start, 1e-9), 'load_seconds': train_start,
          'snapshot_seconds': paused, 'snapshots': snapshots, 'last': last}


def training_result(args: argparse.Namespace, run: dict, model: str, epochs: float,
                    real_images_per_step: int, device: torch.device) -> dict:
  """The JSON line of a training run: `run` is train_for_minutes' result, and each step
  shows the discriminator `real_images_per_step` real images."""
  loss_d, loss_g = run['last'] or (torch.zeros(()), torch.zeros(()))
  return {
      'framework': 'pytorch',
      'model': model,
      'minutes': run['minutes'],  # of training: snapshot writing left out
      'steps': run['steps'],
      'epochs': epochs,
      'batch_size': args.batch_size,
      # Real images the discriminator sees per second of the training loop.
      'images_per_second': run['steps'] * real_images_per_step / run['train_seconds'],
      'load_seconds': run['load_seconds'],
      'snapshot_seconds': run['snapshot_seconds'],
      'snapshots': run['snapshots'],
      'd_loss': float(loss_d),
      'g_loss': float(loss_g),
      'num_samples': args.num_samples,
      'seed': args.seed,
      'device': device.type,
      'threads': torch.get_num_threads(),
      'output': args.output,
  }


def positive_float(text: str) -> float:
  value = float(text)
  if not value > 0:
    raise argparse.ArgumentTypeError(f'must be > 0, got {value}')
  return value


def minute_marks(text: str) -> list[float]:
  """'5,10' -> [5.0, 10.0]: sorted, each > 0."""
  try:
    return sorted({positive_float(mark) for mark in text.split(',') if mark.strip()})
  except ValueError as e:
    raise argparse.ArgumentTypeError(f'expected minutes separated by commas, e.g. 5,10; {e}')


def add_training_arguments(parser: argparse.ArgumentParser, output: str) -> None:
  """The flags of a training run for a time budget (train_for_minutes), --output defaulting
  to `output`."""
  parser.add_argument('--minutes', type=positive_float, default=15.0,
                      help='Wall-clock training budget, reading the data included.')
  parser.add_argument('--output', default=output,
                      help='The .npy file of float32 NHWC samples in [0, 1].')
  parser.add_argument('--snapshot_minutes', type=minute_marks, default=[],
                      help='Also write samples at these minutes of the budget, e.g. 5,10, to '
                      'OUTPUT_5min.npy, ... beside --output; writing them takes no training '
                      'time.')
  parser.add_argument('--num_samples', type=positive, default=10_000)
  parser.add_argument('--data_dir', default='/usr/share/datasets/fashion-mnist',
                      help=f'Folder holding {TRAIN_FILE}.')
  parser.add_argument('--batch_size', type=positive, default=64)
  parser.add_argument('--sample_batch_size', type=positive, default=500)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--device', choices=['cpu', 'cuda'], default=None,
                      help='Default: cuda if available, else cpu.')
  parser.add_argument('--threads', type=positive, default=None,
                      help='torch.set_num_threads; default: leave torch\'s choice.')


def check_training_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
  """Exits with a usage error if a snapshot falls at or after the end of the budget."""
  if args.snapshot_minutes and args.snapshot_minutes[-1] >= args.minutes:
    parser.error(f'--snapshot_minutes must be below --minutes={args.minutes:g}; got '
                 f'{args.snapshot_minutes[-1]:g}.')
