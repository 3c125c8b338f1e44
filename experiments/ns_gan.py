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
  # On 2 CPU cores, more updates of a narrower net beat fewer of a wider one: width 32 and
  # batch 32 run ~23 steps/s, and 12,000 steps (~9 min) give recognisable garments.
  return configs.apply_preset(config, arg, cpu={
      'model.width': 32, 'batch_size': 32, 'num_steps': 12_000,
      'log_every': 500, 'sample_every': 2000, 'checkpoint_every': 2000})
