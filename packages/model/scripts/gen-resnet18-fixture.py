#!/usr/bin/env python3
"""Reference fixture for packages/model/test/pretrained.test.ts.

Builds a width-reduced ResNet-18 with torchvision's exact module layout and state-dict names
(BasicBlock from torchvision, widths 8/16/32/64 instead of 64/128/256/512), initialises it with
a fixed torch seed (no download), gives the BatchNorm layers non-trivial affine parameters and
running statistics, and writes, in safetensors format (written by hand: the `safetensors`
package is not needed):

  resnet18-w8-small.safetensors     small-image stem (conv1 3x3 stride 1, maxpool = Identity,
                                    as the MaskCon code does for <= 64 px), F32, plus an `fc`
                                    head and I64 num_batches_tracked (both ignored on load)
  resnet18-w8-standard.safetensors  torchvision's standard stem (7x7/2 conv + 3x3/2 max-pool),
                                    stored as F16 (the reference output is computed with the
                                    F16-rounded weights, so the comparison stays exact)
  resnet18-w8-io.safetensors        inputs (NCHW) and eval-mode pooled features of both models

Run with Debian's torch (not a pyenv python):
  /usr/bin/python3 packages/model/scripts/gen-resnet18-fixture.py [OUT_DIR]
Default OUT_DIR: packages/model/test/fixtures
"""
import json
import os
import struct
import sys

import torch
import torch.nn as nn
import torchvision
from torchvision.models.resnet import BasicBlock

BASE = 8  # torchvision uses 64


class SmallResNet18(nn.Module):
    """torchvision.models.resnet.ResNet(BasicBlock, [2, 2, 2, 2]) with base width BASE."""

    def __init__(self, stem, base=BASE, num_classes=10):
        super().__init__()
        self.inplanes = base
        if stem == 'small':
            self.conv1 = nn.Conv2d(3, base, kernel_size=3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(3, base, kernel_size=7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(base)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(base, 2)
        self.layer2 = self._make_layer(base * 2, 2, stride=2)
        self.layer3 = self._make_layer(base * 4, 2, stride=2)
        self.layer4 = self._make_layer(base * 8, 2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(base * 8, num_classes)
        for m in self.modules():  # torchvision's init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        for _ in range(1, blocks):
            layers.append(BasicBlock(self.inplanes, planes))
        return nn.Sequential(*layers)

    def features(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


def check_layout():
    """Same names and (at base 64) the same shapes as torchvision's resnet18."""
    ours = SmallResNet18('standard', base=64, num_classes=1000).state_dict()
    ref = torchvision.models.resnet18().state_dict()
    assert list(ours.keys()) == list(ref.keys()), 'state-dict names differ from torchvision'
    for k in ref:
        assert ours[k].shape == ref[k].shape, (k, ours[k].shape, ref[k].shape)


def randomise_bn(model, gen):
    """Non-trivial BN affine parameters, then running statistics from a few training batches."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=gen))
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=gen))
            m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model.features(torch.randn(8, 3, 40, 40, generator=gen))
    model.eval()


DTYPES = {torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16', torch.float64: 'F64',
          torch.int64: 'I64', torch.int32: 'I32'}


def tensor_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: take the upper halves of float32
        return (t.float().view(torch.int32) >> 16).to(torch.int16).numpy().astype('<i2').tobytes()
    arr = t.numpy()
    return arr.astype(arr.dtype.newbyteorder('<')).tobytes()


def save_safetensors(path, tensors, metadata=None):
    """Minimal safetensors writer: u64 LE header length, JSON header (padded to 8 bytes), data."""
    header, chunks, offset = {}, [], 0
    if metadata:
        header['__metadata__'] = metadata
    for name, t in tensors.items():
        b = tensor_bytes(t)
        header[name] = {'dtype': DTYPES[t.dtype], 'shape': list(t.shape), 'data_offsets': [offset, offset + len(b)]}
        chunks.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(',', ':')).encode('utf-8')
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path + '.tmp', 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in chunks:
            f.write(b)
    os.replace(path + '.tmp', path)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures')
    os.makedirs(out, exist_ok=True)
    check_layout()
    torch.manual_seed(1234)
    gen = torch.Generator().manual_seed(99)
    meta = {'source': 'packages/model/scripts/gen-resnet18-fixture.py', 'torch': torch.__version__,
            'torchvision': torchvision.__version__, 'arch': 'resnet18', 'base_width': str(BASE)}

    small = SmallResNet18('small')
    randomise_bn(small, gen)
    x_small = torch.randn(2, 3, 32, 32, generator=gen)
    with torch.no_grad():
        f_small = small.features(x_small)
    save_safetensors(os.path.join(out, 'resnet18-w8-small.safetensors'), small.state_dict(), dict(meta, stem='small'))

    std = SmallResNet18('standard')
    randomise_bn(std, gen)
    sd16 = {k: (v.half() if v.is_floating_point() else v) for k, v in std.state_dict().items()}
    std.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd16.items()})
    std.eval()
    x_std = torch.randn(2, 3, 45, 45, generator=gen)  # odd sizes: 45 -> 23 -> 12 (exercises the padding)
    with torch.no_grad():
        f_std = std.features(x_std)
    save_safetensors(os.path.join(out, 'resnet18-w8-standard.safetensors'), sd16, dict(meta, stem='standard'))

    save_safetensors(os.path.join(out, 'resnet18-w8-io.safetensors'), {
        'input_small': x_small, 'features_small': f_small,
        'input_standard': x_std, 'features_standard': f_std,
    }, meta)
    print('features_small', tuple(f_small.shape), float(f_small.abs().max()))
    print('features_standard', tuple(f_std.shape), float(f_std.abs().max()))


if __name__ == '__main__':
    main()
