r"""Class-conditional SNGAN (Miyato & Koyama, 2018): resnet_sngan.py's networks, G's batch
norms per class and a projection discriminator, on Fashion-MNIST's 10 classes at 32x32.
Sample grids put one class per row; `gan_jax.sample --label K` draws class K, and
`gan_jax.evaluate` adds class faithfulness and intra-class FID. `:cpu`: 30 minutes on 2
CPU cores.

python -m gan_jax.main --config experiments/cond_sngan.py --workdir runs/cond_sngan
python -m gan_jax.main --config experiments/cond_sngan.py:cpu --workdir runs/cond_sngan_cpu
python -m gan_jax.sample --workdir runs/cond_sngan_cpu --label 7 --num_samples 100
"""
from gan_jax import configs


def get_config(arg=None):
  config = configs.resnet()
  config.model.conditional = True
  config.num_grid_samples = 100  # 10 rows, one per class
  return configs.apply_preset(config, arg, cpu=configs.RESNET_CPU)
