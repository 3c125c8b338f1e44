r"""DCGAN with the non-saturating loss on Fashion-MNIST: the default experiment.

Radford et al. (2016) architecture; G maximises log D(G(z)) (Goodfellow et al., 2014).

python -m gan_jax.main --config experiments/ns_gan.py --workdir runs/ns_gan
python -m gan_jax.main --config experiments/ns_gan.py:cpu --workdir runs/ns_gan_cpu  # 2 CPU cores
"""
from gan_jax import configs


def get_config(arg=None):
  config = configs.default()
  config.dataset = 'fashion_mnist'
  config.model.name = 'dcgan'
  config.loss = 'non_saturating'
  return configs.apply_preset(config, arg, cpu={
      'num_steps': 3000, 'log_every': 100, 'sample_every': 500, 'checkpoint_every': 500})
