r"""The original GAN (Goodfellow et al., 2014): MLPs, uniform latents, the minimax loss.

G minimises log(1 - D(G(z))), the saturating loss of the paper's value function.
The paper used MNIST; Fashion-MNIST is the dataset that is available offline here.

`:cpu` (3,000 steps) takes about 1 minute on 2 CPU cores.

python -m gan_jax.main --config experiments/vanilla_gan.py --workdir runs/vanilla_gan
python -m gan_jax.main --config experiments/vanilla_gan.py:cpu --workdir runs/vanilla_gan_cpu
"""
from gan_jax import configs


def get_config(arg=None):
  config = configs.default()
  config.dataset = 'fashion_mnist'
  config.model.name = 'mlp'
  config.model.width = 512
  config.model.mlp_layers = 2
  config.model.latent_prior = 'uniform'
  config.loss = 'minimax'
  return configs.apply_preset(config, arg, cpu={
      'num_steps': 3000, 'log_every': 100, 'sample_every': 500, 'checkpoint_every': 500})
