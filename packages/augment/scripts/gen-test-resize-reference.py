#!/usr/bin/env python3
"""Reference for the test pipeline (packages/augment/test/test-resize.test.ts): torchvision's
Compose([Resize([size, size]), ToTensor(), Normalize(mean, std)]) on PIL images of several
aspect ratios (shrinking, enlarging, both at once, grey), as the authors' evaluation code runs it.

Writes packages/augment/test/fixtures/test-resize-reference.json: per case the input (uint8 HWC,
base64), the Resize output (uint8 HWC, base64) and the normalised tensor (float32 HWC, base64).

Needs Debian's python3-pil, python3-numpy and python3-torchvision:
    /usr/bin/python3 packages/augment/scripts/gen-test-resize-reference.py
"""
import base64
import json
import os

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision import transforms as T

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures',
                   'test-resize-reference.json')
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def pattern(h, w, c, seed):
    rs = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w]
    chans = [(x * (255.0 / max(w - 1, 1)) * (k % 2) + y * (255.0 / max(h - 1, 1)) * ((k + 1) % 2)) * 0.7
             + rs.randint(0, 90, size=(h, w)) for k in range(c)]
    return np.clip(np.stack(chans, axis=-1), 0, 255).astype(np.uint8)


def b64(a):
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode('ascii')


cases = []
for name, (h, w, c, size) in {
    'landscape 80x120 -> 48': (80, 120, 3, 48),   # both sides shrink, by different factors
    'portrait 90x50 -> 48': (90, 50, 3, 48),      # one side shrinks, one grows
    'small 20x33 -> 32': (20, 33, 3, 32),         # both grow
    'grey 45x30 -> 32': (45, 30, 1, 32),
}.items():
    arr = pattern(h, w, c, len(cases) + 11)
    pil = Image.fromarray(arr[:, :, 0], 'L') if c == 1 else Image.fromarray(arr, 'RGB')
    resized = T.Resize([size, size])(pil)  # PIL BILINEAR, antialiased: torchvision's default
    out = np.asarray(resized, dtype=np.uint8)
    out = out[:, :, None] if out.ndim == 2 else out
    mean, std = (MEAN, STD) if c == 3 else ([0.5], [0.25])
    tensor = T.Normalize(mean, std)(T.ToTensor()(resized))  # CHW
    cases.append({'name': name, 'height': h, 'width': w, 'channels': c, 'size': size,
                  'mean': mean, 'std': std, 'input': b64(arr), 'resized': b64(out),
                  'normalized': b64(tensor.permute(1, 2, 0).contiguous().numpy().astype('<f4'))})

with open(OUT + '.tmp', 'w') as f:
    json.dump({'torchvision': torchvision.__version__, 'torch': torch.__version__,
               'pil': Image.__version__, 'cases': cases}, f, indent=1)
os.replace(OUT + '.tmp', OUT)
print(OUT, len(cases))
