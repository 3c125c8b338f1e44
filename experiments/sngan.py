r"""SN-GAN (Miyato et al., 2018): spectral norm in every discriminator layer, hinge loss.

DCGAN-style networks on Fashion-MNIST, Adam(2e-4, 0.5, 0.999) and one D update
per G update: setting (C) of the paper.

`:cpu` (3,000 steps) takes about 10 minutes on 2 CPU cores.

python -m gan_jax.main --config experiments/sngan.py --workdir runs/sngan
python -m gan_jax.main --config experiments/sngan.py:cpu --workdir runs/sngan_cpu
"""
from gan_jax import configs


def get_config(arg=None):
  config = configs.default()
  config.dataset = 'fashion_mnist'
  config.model.name = 'dcgan'
  config.model.spectral_norm = True
  config.loss = 'hinge'
  return configs.apply_preset(config, arg, cpu={
      'num_steps': 3000, 'log_every': 100, 'sample_every': 500, 'checkpoint_every': 500})
