r"""WGAN-GP (Gulrajani et al., 2017) with the DCGAN architecture on Fashion-MNIST.

Five critic updates per generator update, penalty weight 10, Adam(1e-4, 0, 0.9) as
in the paper. The critic has no batch norm: the penalty is per example.

`:cpu` (1,000 steps) takes about 15 minutes on 2 CPU cores, ~0.9 s a step.

python -m gan_jax.main --config experiments/wgan_gp.py --workdir runs/wgan_gp
python -m gan_jax.main --config experiments/wgan_gp.py:cpu --workdir runs/wgan_gp_cpu
"""
from gan_jax import configs


def get_config(arg=None):
  config = configs.default()
  config.dataset = 'fashion_mnist'
  config.model.name = 'dcgan'
  config.loss = 'wasserstein'
  config.gradient_penalty = 10.0
  config.n_critic = 5
  for optimizer in (config.g_optimizer, config.d_optimizer):
    optimizer.learning_rate, optimizer.b1, optimizer.b2 = 1e-4, 0.0, 0.9
  return configs.apply_preset(config, arg, cpu={
      'num_steps': 1000, 'log_every': 50, 'sample_every': 250, 'checkpoint_every': 250})
