r"""The five GAN losses at an equal budget, several seeds each: "Are GANs Created Equal?".

Lucic et al. (2018) found no loss that consistently beat the non-saturating one: with
random restarts and enough tuning, most reached similar FIDs, and the spread over seeds was
large. This is their design on our data, without the per-loss hyperparameter search: every
loss trains the same networks with the same optimizer for the same number of generator
updates, over several seeds, and the summary shows each loss's spread of scores. WGAN-GP
keeps its usual 5 critic updates a step, i.e. 5x the discriminator's work.

The full study: DCGAN on Fashion-MNIST, FID of 10,000 samples every 5,000 steps, 5 seeds.
`:cpu` runs the toy version: MLPs on the 25-mode grid (experiments/toy_grid.py at batch 1024
for 3,000 steps, 3 seeds), scored by modes covered and the share of high-quality samples. The
non-saturating loss, seed 0, covers 22 modes with 47% high-quality samples in 83 s of 2 shared
cores. The 15 runs take ~2,000 CPU-seconds (55% of them WGAN-GP's, at ~6x the cost per step):
about 17 minutes on 2 idle cores with --parallel 2.

python -m launch.sweep --sweep launch/sweeps/loss_study.py:cpu --target local --parallel 2
python -m launch.summary runs/sweeps/loss_study_cpu
python -m launch.sweep --sweep launch/sweeps/loss_study.py --target sky --accelerator tpu-v4-8 \
    --spot --bucket gs://my-bucket
"""
from launch import hyper

LOSSES = [
    {'loss': 'minimax'},
    {'loss': 'non_saturating'},
    {'loss': 'wasserstein', 'gradient_penalty': 10.0, 'n_critic': 5},  # WGAN-GP
    {'loss': 'hinge', 'model.spectral_norm': True},  # SN-GAN
    {'loss': 'least_squares'},
]


def get_sweep(arg=None):
  if arg is None:
    fixed = {'eval_every': 5000, 'eval_num_samples': 10_000}
    return 'experiments/ns_gan.py', hyper.product([fixed], LOSSES, hyper.sweep('seed', range(5)))
  if arg == 'cpu':
    fixed = {'batch_size': 1024, 'num_steps': 3000, 'eval_every': 3000,
             'eval_num_samples': 10_000}
    return 'experiments/toy_grid.py', hyper.product([fixed], LOSSES,
                                                    hyper.sweep('seed', range(3)))
  raise hyper.unknown_arg(arg, ['cpu'])
