r"""The five GAN losses at an equal budget, several seeds each: "Are GANs Created Equal?".

Lucic et al. (2018) found that, given the same computational budget, no loss beat the
non-saturating one consistently: seeds and hyperparameters moved FID more than the loss.
This is their design on our data: every loss trains the same networks for the same number
of generator updates with the same optimizer, over several seeds, and the summary shows each
loss's distribution of scores. WGAN-GP takes its usual 5 critic updates a step (5x the
discriminator's work: the budget is counted in generator updates, as in the paper).

The full study: DCGAN on Fashion-MNIST, FID of 10,000 samples every 5,000 steps, 5 seeds.
`:cpu` runs the toy version: MLPs on the 25-mode grid (experiments/toy_grid.py at batch 1024,
3,000 steps, ~22 of 25 modes for the non-saturating loss), scored by modes covered and the
high-quality share, 3 seeds; about 20 minutes on 2 CPU cores (WGAN-GP's runs take 60%).

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
