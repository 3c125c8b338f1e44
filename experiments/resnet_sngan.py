r"""SNGAN's ResNet (Miyato et al., 2018): residual G with batch norm, residual D with
spectral norm, hinge loss, 5 D steps per G step, Adam(2e-4, 0, 0.9): the paper's CIFAR-10
setting (its Table 4 networks, Mimicry's sngan_32), on Fashion-MNIST resized to 32x32.
`:cpu` is a narrower, faster version for 30 minutes on 2 CPU cores. 64x64 images take one
more block in each network: --config.data.image_size=64.

`:cifar10` is the paper's unconditional CIFAR-10 run (Table 2, "SN-GANs, Eq.(17)" under
ResNet: hinge loss; networks of its Table 4; Appendix B.2's Adam(2e-4, 0, 0.9) with 5 D
steps), with the schedule of the authors' configs/sn_cifar10_unconditional.yml
(pfnet-research/sngan_projection): batch 64, 50,000 generator updates, the learning rate
decayed linearly to 0 from the start, no EMA. Published: Inception score 8.22 +- .05 and FID
21.7 +- .21 (Table 2; FID of 10,000 generated against 5,000 real images, Appendix B.1). What
differs: the paper's text says generators were updated 100K times "unless otherwise noted"
and does not mention the decay; we follow the released config. Its generator update draws
128 samples (n_gen_samples: 128), ours 64. Estimated cost: 50,000 steps x FLOPs per step
(`python -m gan_jax.benchmark --config experiments/resnet_sngan.py:cifar10
--config.model.conv_implementation=xla --flops_only`: 2.40 TFLOP per step, jax 0.10.2) at
30% of an H100's 989 TFLOP/s (dense bf16): about 0.11 H100 hours.

python -m gan_jax.main --config experiments/resnet_sngan.py --workdir runs/resnet_sngan
python -m gan_jax.main --config experiments/resnet_sngan.py:cpu --workdir runs/resnet_sngan_cpu
python -m gan_jax.main --config experiments/resnet_sngan.py:cifar10 --workdir runs/resnet_sngan_cifar10
"""
from gan_jax import configs


def get_config(arg=None):
  return configs.apply_preset(configs.resnet(), arg, cpu=configs.RESNET_CPU,
                              cifar10=configs.SNGAN_CIFAR10)
