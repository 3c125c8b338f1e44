r"""BigGAN (Brock et al., 2019) at its CIFAR-10 scale, on Fashion-MNIST's 10 classes at 32x32.

ResNet G and D with spectral norm in both, G's batch norms conditioned on a shared class
embedding and a chunk of the hierarchical latent, a projection D, hinge loss, 4 D steps
per G step, Adam(2e-4, 0, 0.999), orthogonal regularisation (1e-4) and an EMA of G.
Self-attention is optional: --config.model.attention_resolution=16. Sample with the
truncation trick: `gan_jax.sample --truncation 0.5`. `:cpu`: 30 minutes on 2 CPU cores.

python -m gan_jax.main --config experiments/biggan.py --workdir runs/biggan
python -m gan_jax.main --config experiments/biggan.py:cpu --workdir runs/biggan_cpu
python -m gan_jax.sample --workdir runs/biggan_cpu --truncation 0.5 --num_samples 100
"""
from gan_jax import configs


def get_config(arg=None):
  config = configs.resnet()
  config.model.name = 'biggan'
  config.model.conditional = True
  config.model.width = config.model.d_width = 256  # BigGAN-PyTorch's ch=64, times 4
  config.n_critic = 4
  config.batch_size = 50
  for optimizer in (config.g_optimizer, config.d_optimizer):
    optimizer.b2 = 0.999
  config.orthogonal_reg = 1e-4
  config.num_grid_samples = 100  # 10 rows, one per class
  return configs.apply_preset(config, arg, cpu=configs.RESNET_CPU)
