r"""WGAN-GP's gradient-penalty weight lambda against the critic updates per generator update.

Gulrajani et al. (2017) use lambda = 10 and 5 critic updates; this sweeps lambda over three
orders of magnitude with 1 and 5 critic updates, 2 seeds each, scored by FID
(experiments/wgan_gp.py: DCGAN on Fashion-MNIST). `:cpu` is the toy version on the 25-mode
grid (2,000 steps at batch 1024, one seed), scored by modes covered: ~1,300 CPU-seconds
(by loss_study's cost per step), about 11 minutes on 2 idle cores with --parallel 2.

python -m launch.sweep --sweep launch/sweeps/wgan_gp_lambda.py:cpu --target local --parallel 2
python -m launch.summary runs/sweeps/wgan_gp_lambda_cpu
python -m launch.sweep --sweep launch/sweeps/wgan_gp_lambda.py --target sky \
    --accelerator H100:8 --num_nodes 2 --bucket gs://my-bucket
"""
from launch import hyper

PENALTIES = hyper.sweep('gradient_penalty', [0.1, 1.0, 10.0, 100.0])
CRITIC_STEPS = hyper.sweep('n_critic', [1, 5])


def get_sweep(arg=None):
  if arg is None:
    fixed = {'eval_every': 2500, 'eval_num_samples': 10_000}
    return 'experiments/wgan_gp.py', hyper.product(
        [fixed], PENALTIES, CRITIC_STEPS, hyper.sweep('seed', range(2)))
  if arg == 'cpu':
    fixed = {'loss': 'wasserstein', 'batch_size': 1024, 'num_steps': 2000, 'eval_every': 2000,
             'eval_num_samples': 10_000}
    return 'experiments/toy_grid.py', hyper.product([fixed], PENALTIES, CRITIC_STEPS)
  raise hyper.unknown_arg(arg, ['cpu'])
