"""torchvision + PIL side of scripts/bench-augment.ts (not run on its own).

argv: images.bin count height width seconds workers. Prints one JSON line of images/s for
the same pipelines as the TypeScript side: CIFAR-style strong/weak at 32 (first 32x32 crop
of each image), cars196 strong / sop weak at 224 from the 256-short-side images.
"""
import json
import multiprocessing as mp
import random
import sys
import time

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

torch.set_num_threads(1)
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class Blur:
    def __call__(self, img):
        return img.filter(ImageFilter.GaussianBlur(radius=random.uniform(0.1, 2.0)))


def _fill_rotate(img, deg):
    rot = img.convert("RGBA").rotate(deg)
    return Image.composite(rot, Image.new("RGBA", rot.size, (128,) * 4), rot).convert(img.mode)


def _sign():
    return random.choice([-1, 1])


# (name, p, level) pairs of the CIFAR-10 AutoAugment policy; levels index 10-point tables.
POLICY = [
    (("invert", .1, 7), ("contrast", .2, 6)), (("rotate", .7, 2), ("translateX", .3, 9)),
    (("sharpness", .8, 1), ("sharpness", .9, 3)), (("shearY", .5, 8), ("translateY", .7, 9)),
    (("autocontrast", .5, 8), ("equalize", .9, 2)), (("shearY", .2, 7), ("posterize", .3, 7)),
    (("color", .4, 3), ("brightness", .6, 7)), (("sharpness", .3, 9), ("brightness", .7, 9)),
    (("equalize", .6, 5), ("equalize", .5, 1)), (("contrast", .6, 7), ("sharpness", .6, 5)),
    (("color", .7, 7), ("translateX", .5, 8)), (("equalize", .3, 7), ("autocontrast", .4, 8)),
    (("translateY", .4, 3), ("sharpness", .2, 6)), (("brightness", .9, 6), ("color", .2, 8)),
    (("solarize", .5, 2), ("invert", 0., 3)), (("equalize", .2, 0), ("autocontrast", .6, 0)),
    (("equalize", .2, 8), ("equalize", .6, 4)), (("color", .9, 9), ("equalize", .6, 6)),
    (("autocontrast", .8, 4), ("solarize", .2, 8)), (("brightness", .1, 3), ("color", .7, 0)),
    (("solarize", .4, 5), ("autocontrast", .9, 3)), (("translateY", .9, 9), ("translateY", .7, 9)),
    (("autocontrast", .9, 2), ("solarize", .8, 3)), (("equalize", .8, 8), ("invert", .1, 3)),
    (("translateY", .7, 9), ("autocontrast", .9, 1)),
]
TABLE = {
    "shearX": np.linspace(0, .3, 10), "shearY": np.linspace(0, .3, 10),
    "translateX": np.linspace(0, 150 / 331, 10), "translateY": np.linspace(0, 150 / 331, 10),
    "rotate": np.linspace(0, 30, 10), "color": np.linspace(0, .9, 10), "contrast": np.linspace(0, .9, 10),
    "sharpness": np.linspace(0, .9, 10), "brightness": np.linspace(0, .9, 10),
    "posterize": np.round(np.linspace(8, 4, 10), 0).astype(int), "solarize": np.linspace(256, 0, 10),
}
G = (128, 128, 128)


def op(img, name, m):
    if name == "shearX": return img.transform(img.size, Image.AFFINE, (1, m * _sign(), 0, 0, 1, 0), Image.BICUBIC, fillcolor=G)
    if name == "shearY": return img.transform(img.size, Image.AFFINE, (1, 0, 0, m * _sign(), 1, 0), Image.BICUBIC, fillcolor=G)
    if name == "translateX": return img.transform(img.size, Image.AFFINE, (1, 0, m * img.size[0] * _sign(), 0, 1, 0), fillcolor=G)
    if name == "translateY": return img.transform(img.size, Image.AFFINE, (1, 0, 0, 0, 1, m * img.size[1] * _sign()), fillcolor=G)
    if name == "rotate": return _fill_rotate(img, m)
    if name == "color": return ImageEnhance.Color(img).enhance(1 + m * _sign())
    if name == "contrast": return ImageEnhance.Contrast(img).enhance(1 + m * _sign())
    if name == "sharpness": return ImageEnhance.Sharpness(img).enhance(1 + m * _sign())
    if name == "brightness": return ImageEnhance.Brightness(img).enhance(1 + m * _sign())
    if name == "posterize": return ImageOps.posterize(img, int(m))
    if name == "solarize": return ImageOps.solarize(img, m)
    if name == "autocontrast": return ImageOps.autocontrast(img)
    if name == "equalize": return ImageOps.equalize(img)
    return ImageOps.invert(img)


class Policy:
    def __call__(self, img):
        for name, p, level in random.choice(POLICY):
            if random.random() < p:
                img = op(img, name, TABLE[name][level] if name in TABLE else 0)
        return img


def pipelines():
    norm = [T.ToTensor(), T.Normalize(MEAN, STD)]
    return {
        "strong32": T.Compose([T.RandomResizedCrop(32, (0.2, 1)), T.RandomHorizontalFlip(), Policy()] + norm),
        "weak32": T.Compose([T.RandomResizedCrop(32, (0.2, 1)), T.RandomHorizontalFlip()] + norm),
        "strong224": T.Compose([
            T.RandomResizedCrop(224, (0.2, 1)), T.RandomHorizontalFlip(), T.RandomPerspective(0.5, 0.5),
            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8), T.RandomGrayscale(p=0.2),
            T.RandomApply([Blur()], p=0.5)] + norm),
        "weak224": T.Compose([T.RandomResizedCrop(224, (0.2, 1)), T.RandomPerspective(0.5, 0.5), T.RandomHorizontalFlip()] + norm),
    }


def load(path, count, h, w):
    raw = np.fromfile(path, dtype=np.uint8).reshape(count, h, w, 3)
    big = [Image.fromarray(a, "RGB") for a in raw]
    small = [Image.fromarray(np.ascontiguousarray(a[:32, :32]), "RGB") for a in raw]
    return big, small


def run(args):
    name, path, count, h, w, seconds, seed = args
    random.seed(seed)
    torch.manual_seed(seed)
    big, small = load(path, count, h, w)
    images = small if name.endswith("32") else big
    t = pipelines()[name]
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for img in images[:16]:
            t(img)
        n += 16
    return n / (time.perf_counter() - t0)


if __name__ == "__main__":
    path, count, h, w, seconds, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
    out = {}
    for name in ("strong32", "weak32", "strong224", "weak224"):
        single = run((name, path, count, h, w, seconds, 0))
        with mp.Pool(workers) as pool:
            rates = pool.map(run, [(name, path, count, h, w, seconds, k) for k in range(workers)])
        out[name] = {"single": single, "all": sum(rates)}
    print(json.dumps(out))
