r"""DiffAugment on 10% or 1% of Fashion-MNIST (Zhao et al., 2020): the same run with and without it.

With 6,000 training images the discriminator memorises them and FID climbs while training
goes on; DiffAugment ('color,translation,cutout' on real and fake alike) keeps D from it.
Both runs are experiments/sngan.py:cpu (hinge, spectral norm, EMA of G) for a fixed number
of steps, so a busy machine changes their time, not their result; FID on 10,000 samples
every 4,000 steps. `:cpu` makes 16,000 steps each (85 epochs of the 6,000 images), about
20 minutes in all on 2 idle cores, one run after the other; the full sweep trains the
paper-scale experiments/sngan.py for 100,000 steps (1,000+ epochs), 3 seeds each.
`:cpu_1pct` is `:cpu` on the first 600 images: 16,000 steps are 1,700 epochs (the README has
both pairs' results: the augmentation did not help at either size).

python -m launch.sweep --sweep launch/sweeps/diffaugment_small_data.py:cpu --target local
python -m launch.summary runs/sweeps/diffaugment_small_data_cpu
python -m launch.sweep --sweep launch/sweeps/diffaugment_small_data.py:cpu_1pct --target local
"""
from launch import hyper

POLICIES = hyper.sweep('diffaugment', ['', 'color,translation,cutout'])


def get_sweep(arg=None):
  if arg is None:
    fixed = {'data.num_examples': 6000, 'num_steps': 100_000, 'eval_every': 10_000,
             'eval_num_samples': 10_000}
    return 'experiments/sngan.py', hyper.product([fixed], POLICIES, hyper.sweep('seed', range(3)))
  if arg in ('cpu', 'cpu_1pct'):
    fixed = {'data.num_examples': 6000 if arg == 'cpu' else 600, 'train_minutes': 0.0,
             'num_steps': 16_000, 'eval_every': 4000, 'eval_num_samples': 10_000}
    return 'experiments/sngan.py:cpu', hyper.product([fixed], POLICIES)
  raise hyper.unknown_arg(arg, ['cpu', 'cpu_1pct'])
