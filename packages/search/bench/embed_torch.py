"""PyTorch CPU forward of torchvision's ResNet-18 backbone (fc removed), the peer of
`pnpm bench embed`. Prints one JSON line: images, seconds, threads.

usage: embed_torch.py PX BATCH SECONDS THREADS
PX <= 64 uses the small stem (3x3 stride-1 conv, no max-pool), as the MaskCon code does."""
import json
import sys
import time

import torch
import torchvision

px, batch, seconds, threads = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
torch.manual_seed(0)
net = torchvision.models.resnet18(weights=None)
if px <= 64:
    net.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    net.maxpool = torch.nn.Identity()
net.fc = torch.nn.Identity()
net.eval()
x = torch.randn(batch, 3, px, px)
with torch.inference_mode():
    net(x)  # warm-up
    n = 0
    t0 = time.perf_counter()
    while True:
        y = net(x)
        n += batch
        dt = time.perf_counter() - t0
        if dt >= seconds:
            break
assert y.shape == (batch, 512)
print(json.dumps({"images": n, "seconds": dt, "threads": torch.get_num_threads()}))
