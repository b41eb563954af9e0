#!/usr/bin/env python3
"""Names and shapes of torchvision's resnet18/34/50 state dicts (without fc.* and
num_batches_tracked), for packages/model/test/resnet.test.ts.

  /usr/bin/python3 packages/model/scripts/gen-torchvision-layout.py > packages/model/test/fixtures/torchvision-layout.json
"""
import json

import torch
import torchvision

out = {'torch': torch.__version__, 'torchvision': torchvision.__version__, 'archs': {}}
for arch in ['resnet18', 'resnet34', 'resnet50']:
    m = getattr(torchvision.models, arch)()
    sd = m.state_dict()
    params = dict(m.named_parameters())
    out['archs'][arch] = {
        'feature_dim': m.fc.in_features,
        'trainable_without_fc': sum(p.numel() for k, p in params.items() if not k.startswith('fc.')),
        'state': [[k, list(v.shape)] for k, v in sd.items()
                  if not k.startswith('fc.') and not k.endswith('num_batches_tracked')],
    }
print(json.dumps(out, separators=(',', ':')))
