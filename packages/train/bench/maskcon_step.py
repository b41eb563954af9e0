"""The MaskCon training step in PyTorch (CPU), for `pnpm bench train`.

Matches packages/model/src (resnet.ts, moco.ts, targets.ts, sgd.ts) as driven by packages/train (replica.ts) and
/work/shared/docs/algorithm.md: backbone torchvision ResNet-18/34/50 with the
small-image stem (3x3 stride-1 conv, no max-pool), or resnet-mini (3x3 stem
conv w, BN, ReLU, BasicBlocks of widths w, 2w, 4w with strides 1, 2, 2 and a
1x1 conv+BN downsample, global average pool), projector Linear(4w,512)-ReLU-Linear(512,128),
MoCo momentum key encoder with shuffle BN, queue logits, MaskCon soft targets,
SGD momentum 0.9 weight decay 5e-4.

    python3 maskcon_step.py --arch resnet18 --batch 128 --K 8192 --width 64 --size 32 --channels 3 \
        --steps 5 --warmup 2 --threads 1

Prints one JSON line: images/s, seconds/step, peak RSS, torch version, threads.
"""
import argparse
import copy
import json
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class SplitBatchNorm(nn.BatchNorm2d):
    """BatchNorm over `splits` groups of the batch in training (MoCo's CIFAR demo): the
    batch's statistics per group, running statistics averaged over the groups."""

    def __init__(self, num_features, splits=1, **kw):
        super().__init__(num_features, **kw)
        self.splits = splits

    def forward(self, x):
        if not self.training or self.splits == 1:
            return super().forward(x)
        n, c, h, w = x.shape
        g = self.splits
        rm = self.running_mean.repeat(g)
        rv = self.running_var.repeat(g)
        y = F.batch_norm(x.view(-1, c * g, h, w), rm, rv, self.weight.repeat(g), self.bias.repeat(g), True, self.momentum, self.eps)
        self.running_mean.data.copy_(rm.view(g, c).mean(0))
        self.running_var.data.copy_(rv.view(g, c).mean(0))
        return y.view(n, c, h, w)


BN_SPLITS = 1


def bn(c):
    return SplitBatchNorm(c, BN_SPLITS)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = bn(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = bn(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), bn(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        sc = x if self.downsample is None else self.downsample(x)
        return F.relu(out + sc)


class ResNetMini(nn.Module):
    """3x3 stem conv w, BN, ReLU, BasicBlocks w, 2w, 4w (strides 1, 2, 2), global average pool."""

    def __init__(self, in_ch, w):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, w, 3, 1, 1, bias=False)
        self.bn1 = bn(w)
        self.layer1 = BasicBlock(w, w, 1)
        self.layer2 = BasicBlock(w, 2 * w, 2)
        self.layer3 = BasicBlock(2 * w, 4 * w, 2)
        self.feat = 4 * w
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.layer3(self.layer2(self.layer1(h)))
        return torch.flatten(F.adaptive_avg_pool2d(h, 1), 1)


def backbone(arch, in_ch, w, stem="small"):
    if arch == "resnet-mini":
        return ResNetMini(in_ch, w)
    import torchvision

    m = getattr(torchvision.models, arch)(norm_layer=bn)
    if stem == "small":
        # small-image stem (images <= 64 px), as the MaskCon code: 3x3 stride-1 conv, no max-pool
        m.conv1 = nn.Conv2d(in_ch, 64, 3, 1, 1, bias=False)
        nn.init.kaiming_normal_(m.conv1.weight, mode="fan_out", nonlinearity="relu")
        m.maxpool = nn.Identity()
    elif in_ch != 3:
        m.conv1 = nn.Conv2d(in_ch, 64, 7, 2, 3, bias=False)
    m.feat = m.fc.in_features
    m.fc = nn.Identity()
    return m


class Encoder(nn.Module):
    """Backbone + projector: normalize(proj(backbone(x)))."""

    def __init__(self, arch, in_ch, w, hidden=512, dim=128, stem="small"):
        super().__init__()
        self.backbone = backbone(arch, in_ch, w, stem)
        self.projector = nn.Sequential(nn.Linear(self.backbone.feat, hidden), nn.ReLU(), nn.Linear(hidden, dim))

    def forward(self, x):
        return F.normalize(self.projector(self.backbone(x)), dim=1)


class MaskCon:
    def __init__(self, arch, in_ch, w, K, dim=128, t0=0.1, m=0.99, weight=1.0, tau=0.05, lr=0.02, stem="small"):
        self.enc_q = Encoder(arch, in_ch, w, dim=dim, stem=stem)
        self.enc_k = copy.deepcopy(self.enc_q)
        for p in self.enc_k.parameters():
            p.requires_grad_(False)
        self.queue = F.normalize(torch.randn(K, dim), dim=1)
        self.queue_labels = torch.full((K,), -1, dtype=torch.long)
        self.ptr = 0
        self.K, self.t0, self.m, self.w, self.tau = K, t0, m, weight, tau
        self.opt = torch.optim.SGD(self.enc_q.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)

    @torch.no_grad()
    def momentum_update(self):
        for pk, pq in zip(self.enc_k.parameters(), self.enc_q.parameters()):
            pk.mul_(self.m).add_(pq.detach(), alpha=1 - self.m)

    @torch.no_grad()
    def keys(self, xk):
        idx = torch.randperm(xk.shape[0])
        inv = torch.argsort(idx)
        return self.enc_k(xk[idx])[inv]

    @torch.no_grad()
    def targets(self, k, labels):
        mask = (labels[:, None] == self.queue_labels[None, :]).float()  # N x K
        s = k @ self.queue.t() / self.tau
        row_max = s.masked_fill(mask == 0, -1e30).max(dim=1, keepdim=True).values
        row_max = torch.where(row_max > -1e29, row_max, torch.zeros_like(row_max))
        p = torch.exp((s - row_max).masked_fill(mask == 0, 0.0)) * mask  # softmax / max over masked entries
        z = torch.cat([torch.ones_like(p[:, :1]), p], 1) / (1 + p.sum(1, keepdim=True))
        one = torch.zeros_like(z)
        one[:, 0] = 1
        return self.w * z + (1 - self.w) * one

    def step(self, xq, xk, labels):
        self.momentum_update()
        k = self.keys(xk)
        y = self.targets(k, labels)
        q = self.enc_q(xq)
        l_pos = (q * k).sum(1, keepdim=True)
        l_neg = q @ self.queue.t()
        logits = torch.cat([l_pos, l_neg], 1) / self.t0
        loss = -(y * F.log_softmax(logits, 1)).sum(1).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        n = k.shape[0]
        self.queue[self.ptr:self.ptr + n] = k
        self.queue_labels[self.ptr:self.ptr + n] = labels
        self.ptr = (self.ptr + n) % self.K
        return loss.detach()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--K", type=int, default=8192)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--classes", type=int, default=20)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--stem", default="small", choices=["small", "standard"])
    ap.add_argument("--bn-group-size", type=int, default=0, help="images per BN group (0 = the whole batch)")
    a = ap.parse_args()
    global BN_SPLITS
    if a.bn_group_size and a.batch % a.bn_group_size:
        raise SystemExit(f"--batch {a.batch} is not a multiple of --bn-group-size {a.bn_group_size}")
    BN_SPLITS = a.batch // a.bn_group_size if a.bn_group_size else 1
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    model = MaskCon(a.arch, a.channels, a.width, a.K, stem=a.stem)
    model.queue_labels = torch.randint(0, a.classes, (a.K,))
    n = a.batch
    xq = torch.randn(n, a.channels, a.size, a.size)
    xk = torch.randn(n, a.channels, a.size, a.size)
    labels = torch.randint(0, a.classes, (n,))
    for _ in range(a.warmup):
        model.step(xq, xk, labels).item()
    times = []
    c0 = time.process_time()  # CPU seconds of every thread: comparable under a shared machine's load
    for _ in range(a.steps):
        t0 = time.perf_counter()
        loss = model.step(xq, xk, labels).item()
        times.append(time.perf_counter() - t0)
    cpu = time.process_time() - c0
    total = sum(times)
    print(json.dumps({
        "impl": "pytorch",
        "arch": a.arch,
        "batch": n,
        "steps": a.steps,
        "images_per_s": n * a.steps / total,
        "step_s_min": min(times),
        "step_s_max": max(times),
        "cpu_s_per_step": cpu / a.steps,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
        "bn_splits": BN_SPLITS,
        "version": torch.__version__,
        "loss": loss,
    }))


if __name__ == "__main__":
    main()
