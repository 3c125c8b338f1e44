r"""Class-conditional SNGAN (Miyato & Koyama, 2018): resnet_sngan.py's networks, G's batch
norms per class and a projection discriminator, on Fashion-MNIST's 10 classes at 32x32.
Sample grids put one class per row; `gan_jax.sample --label K` draws class K, and
`gan_jax.evaluate` adds class faithfulness and intra-class FID. `:cpu`: 30 minutes on 2
CPU cores.

`:cifar10` is the paper's class-conditional CIFAR-10 run as the authors'
configs/sn_cifar10_conditional.yml (pfnet-research/sngan_projection) sets it: SNGAN's ResNet
(G of 256 channels with per-class batch norm, D of 128 with spectral norm and the projection
head), z of 128, hinge loss, 5 D steps, Adam(2e-4, 0, 0.9) decayed linearly to 0 over 50,000
generator updates, batch 64, no EMA. Published: Inception score 8.62, FID 17.5 on CIFAR-10
(the paper's CIFAR results, as Papers with Code lists them; we could not read the table they
come from). What differs: their generator update draws 128 samples (n_gen_samples: 128),
ours 64. Estimated cost: 50,000 steps x FLOPs per step (`python -m gan_jax.benchmark
--config experiments/cond_sngan.py:cifar10 --config.model.conv_implementation=xla
--flops_only`: 2.40 TFLOP per step, jax 0.10.2) at 30% of an H100's 989 TFLOP/s (dense
bf16): about 0.11 H100 hours.

python -m gan_jax.main --config experiments/cond_sngan.py --workdir runs/cond_sngan
python -m gan_jax.main --config experiments/cond_sngan.py:cpu --workdir runs/cond_sngan_cpu
python -m gan_jax.sample --workdir runs/cond_sngan_cpu --label 7 --num_samples 100
python -m gan_jax.main --config experiments/cond_sngan.py:cifar10 --workdir runs/cond_sngan_cifar10
"""
from gan_jax import configs


def get_config(arg=None):
  config = configs.resnet()
  config.model.conditional = True
  config.num_grid_samples = 100  # 10 rows, one per class
  return configs.apply_preset(config, arg, cpu=configs.RESNET_CPU,
                              cifar10=configs.SNGAN_CIFAR10)
