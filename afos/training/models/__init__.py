"""Network architectures in which every activation is the candidate under evaluation.

Each builder receives an *activation factory* and calls it once per activation site, so the candidate
replaces every activation of the network and a candidate with learnable parameters gets its own
parameters in every layer. `afos.training.models.registry.build_model` remembers which modules the factory produced (by their
qualified names on the model, which survive `copy.deepcopy`, pickling and `.to(device)`), and
`activation_sites` hands them back in forward order for per-layer reporting.

Image models accept any of the dataset sizes used here (8x8 digits, 28x28 MNIST family, 32x32 CIFAR):
they end in adaptive average pooling, so the classifier's input width does not depend on the image size.

Torchvision models (`resnet18`, `resnet50`, `mobilenet_v3_small`) are used as published, with two
documented limits:

* torchvision's ResNet ``BasicBlock``/``Bottleneck`` call one ``self.relu`` module two or three times in
  ``forward``. Giving each call its own module would mean rewriting torchvision's ``forward``, so each
  block holds a single candidate module: learnable activation parameters are per block, not per use.
* MobileNetV3's squeeze-and-excitation ``Hardsigmoid`` is kept. It is a gate that squashes channel
  weights into [0, 1], not the network's nonlinearity; an unbounded candidate there would change the
  block from attention to a free multiplier and confound the comparison.
* Their other in-place modules (MobileNetV3's classifier dropout) are made out-of-place, because they
  would overwrite a candidate's output that its backward pass may need.

They keep torchvision's ImageNet stem (stride 4 before the first block), so they see small images at
very low resolution; the CIFAR-specific models above are the ones to use for accuracy comparisons.

The torchvision models of the AFOS and Hu et al. studies (`alexnet`, `vgg16_bn`, `googlenet`,
`densenet121`) get a small-image stem instead (a 3x3 stride-1 first conv, no stem pool; VGG's pools in
ceil mode), without which 28 px inputs shrink to nothing before their last pool. `cct` is a Compact
Convolutional Transformer written here (torchvision has none).
"""
