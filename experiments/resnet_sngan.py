r"""SNGAN's ResNet (Miyato et al., 2018): residual G with batch norm, residual D with
spectral norm, hinge loss, 5 D steps per G step, Adam(2e-4, 0, 0.9): the paper's CIFAR-10
setting (its Table 4 networks, Mimicry's sngan_32), on Fashion-MNIST resized to 32x32.
`:cpu` is a narrower, faster version for 30 minutes on 2 CPU cores. 64x64 images take one
more block in each network: --config.data.image_size=64.

python -m gan_jax.main --config experiments/resnet_sngan.py --workdir runs/resnet_sngan
python -m gan_jax.main --config experiments/resnet_sngan.py:cpu --workdir runs/resnet_sngan_cpu
"""
from gan_jax import configs


def get_config(arg=None):
  return configs.apply_preset(configs.resnet(), arg, cpu=configs.RESNET_CPU)
