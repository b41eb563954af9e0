#!/usr/bin/env python3
"""Reference fixtures for packages/model/test/pth.test.ts: files written by torch.save itself.

  resnet18-w8-standard.pth      torch.save(state_dict) of the width-8 ResNet-18 of
                                gen-resnet18-fixture.py (torchvision's layout and names, standard
                                7x7 stem), F32, with an fc head and int64 num_batches_tracked
  resnet18-w8-pth-io.safetensors  its NCHW input (2x3x64x64) and eval-mode pooled features
  state-dict-dtypes.pth         one tensor of every storage type, a transposed (strided) view, a
                                slice at a storage offset sharing its storage with another entry,
                                a 0-d tensor, an empty tensor, and one conv block (conv + BN)
  state-dict-dtypes.json        the same tensors as plain lists (dtype, shape, values in C order)
  hostile-os-system.pth         a torch.save-layout zip whose data.pkl calls os.system (built by
                                hand: torch.save would not write it); loading it must refuse the
                                global by name and run nothing

Run with Debian's torch (not a pyenv python):
  /usr/bin/python3 packages/model/scripts/gen-pth-fixture.py [OUT_DIR]
Default OUT_DIR: packages/model/test/fixtures
"""
import importlib.util
import json
import os
import sys
import zipfile

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location('gen_resnet18', os.path.join(HERE, 'gen-resnet18-fixture.py'))
gen_resnet18 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen_resnet18)


def save(obj, path):
    torch.save(obj, path + '.tmp')
    os.replace(path + '.tmp', path)


def values(t):
    if t.dtype == torch.bfloat16 or t.dtype == torch.float16:
        t = t.float()
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    return t.reshape(-1).tolist()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, '..', 'test', 'fixtures')
    os.makedirs(out, exist_ok=True)
    meta = {'source': 'packages/model/scripts/gen-pth-fixture.py', 'torch': torch.__version__}

    # 1. A ResNet-18 (base width 8) in torchvision's layout, and PyTorch's features for an input.
    torch.manual_seed(4321)
    gen = torch.Generator().manual_seed(7)
    model = gen_resnet18.SmallResNet18('standard')
    gen_resnet18.randomise_bn(model, gen)
    x = torch.randn(2, 3, 64, 64, generator=gen)
    with torch.no_grad():
        f = model.features(x)
    save(model.state_dict(), os.path.join(out, 'resnet18-w8-standard.pth'))
    gen_resnet18.save_safetensors(os.path.join(out, 'resnet18-w8-pth-io.safetensors'),
                                  {'input': x, 'features': f}, meta)

    # 2. Every storage type, strided views, shared storage, and one conv block.
    g = torch.Generator().manual_seed(0)
    base = torch.randn(10, generator=g)
    sd = {
        'float32': torch.randn(2, 3, generator=g),
        'float64': torch.randn(3, generator=g, dtype=torch.float64),
        'float16': torch.randn(2, 2, generator=g).half(),
        'bfloat16': torch.randn(4, generator=g).bfloat16(),
        'int64': torch.tensor([-(2 ** 40), -1, 0, 7], dtype=torch.int64),
        'int32': torch.tensor([-(2 ** 31), 5, 2 ** 31 - 1], dtype=torch.int32),
        'int16': torch.tensor([-32768, 3, 32767], dtype=torch.int16),
        'int8': torch.tensor([-128, -1, 127], dtype=torch.int8),
        'uint8': torch.tensor([0, 200, 255], dtype=torch.uint8),
        'bool': torch.tensor([True, False, True]),
        'transposed': torch.arange(12, dtype=torch.float32).reshape(3, 4).t(),  # stride (1, 4)
        'shared.base': base,
        'shared.slice': base[3:9:2],  # offset 3, stride 2, same storage
        'scalar': torch.tensor(2.5),
        'empty': torch.zeros(0, 3),
    }
    block = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4))
    for k, v in block.state_dict().items():
        sd[f'block.{k}'] = v
    save(sd, os.path.join(out, 'state-dict-dtypes.pth'))
    with open(os.path.join(out, 'state-dict-dtypes.json'), 'w') as fh:
        json.dump({'meta': meta, 'tensors': {
            k: {'dtype': str(v.dtype).replace('torch.', ''), 'shape': list(v.shape),
                'stride': list(v.stride()), 'offset': v.storage_offset(), 'values': values(v)}
            for k, v in sd.items()}}, fh, indent=1)

    # 3. A hostile archive: the same layout, but its pickle is os.system('touch <marker>').
    marker = '/tmp/maskcon-pth-hostile-ran'
    cmd = f'touch {marker}'.encode()
    pkl = (b'\x80\x02' + b'cos\nsystem\nq\x00' + b'X' + len(cmd).to_bytes(4, 'little') + cmd
           + b'\x85q\x01Rq\x02.')
    path = os.path.join(out, 'hostile-os-system.pth')
    with zipfile.ZipFile(path + '.tmp', 'w', zipfile.ZIP_STORED) as z:
        z.writestr('hostile-os-system/data.pkl', pkl)
        z.writestr('hostile-os-system/version', '3\n')
    os.replace(path + '.tmp', path)
    print('features', tuple(f.shape), float(f.abs().max()))


if __name__ == '__main__':
    main()
