#!/usr/bin/env python3
"""Reference outputs of PIL/torchvision for the deterministic augmentation operations.

Writes packages/augment/test/fixtures/pil-reference.json: a few small fixed input images and,
for each operation and fixed parameter set, the uint8 output PIL/torchvision produce. The
vitest suite (test/pil-reference.test.ts) replays every case with our implementation.

Needs Debian's python3-pil, python3-numpy and python3-torchvision:
    /usr/bin/python3 packages/augment/scripts/gen-pil-reference.py
"""
import base64
import json
import os
import sys

import numpy as np
import PIL
import torchvision
import torchvision.transforms.functional as TF
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "pil-reference.json")


def pattern(h, w, c, seed):
    """Gradients plus noise: every value range and plenty of edges."""
    rs = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w]
    chans = []
    for k in range(c):
        base = (x * (255.0 / max(w - 1, 1)) * (k % 2) + y * (255.0 / max(h - 1, 1)) * ((k + 1) % 2)) * 0.7
        chans.append(base + rs.randint(0, 90, size=(h, w)))
    arr = np.clip(np.stack(chans, axis=-1), 0, 255).astype(np.uint8)
    return arr


def encode(arr):
    return base64.b64encode(np.ascontiguousarray(arr, dtype=np.uint8).tobytes()).decode("ascii")


def to_pil(arr):
    return Image.fromarray(arr[:, :, 0], "L") if arr.shape[2] == 1 else Image.fromarray(arr, "RGB")


def from_pil(img):
    a = np.asarray(img, dtype=np.uint8)
    return a[:, :, None] if a.ndim == 2 else a


INPUTS = {
    "rgb16": pattern(16, 16, 3, 1),
    "rgb20x24": pattern(20, 24, 3, 2),
    "grey16": pattern(16, 16, 1, 3),
    "lowcontrast16": (pattern(16, 16, 3, 4) // 4 + 90).astype(np.uint8),
}

cases = []


def case(op, inp, params, out_img, **extra):
    entry = {"op": op, "input": inp, "params": params, "output": encode(from_pil(out_img))}
    entry.update(extra)
    cases.append(entry)


def fill_for(img, fill=128):
    return fill if img.mode == "L" else (fill,) * 3


# Grey conversion (torchvision rgb_to_grayscale keeps the channel count).
for name in ("rgb16", "rgb20x24"):
    img = to_pil(INPUTS[name])
    case("grayscale", name, {}, TF.rgb_to_grayscale(img, num_output_channels=3))

# ColorJitter's four adjustments, each alone.
for name in ("rgb16", "grey16", "lowcontrast16"):
    img = to_pil(INPUTS[name])
    for f in (0.0, 0.6, 1.37, 1.9):
        case("brightness", name, {"factor": f}, TF.adjust_brightness(img, f))
        case("contrast", name, {"factor": f}, TF.adjust_contrast(img, f))
        case("saturation", name, {"factor": f}, TF.adjust_saturation(img, f))
for name in ("rgb16", "rgb20x24", "lowcontrast16"):
    img = to_pil(INPUTS[name])
    for h in (-0.5, -0.1, -0.0371, 0.0, 0.02, 0.0999, 0.5):
        case("hue", name, {"factor": h}, TF.adjust_hue(img, h))

# ColorJitter with a given order and factors (torchvision's forward, parameters fixed).
for name, order, b, c, s, h in (
    ("rgb16", [0, 1, 2, 3], 0.7, 1.3, 0.65, 0.08),
    ("rgb16", [3, 2, 1, 0], 1.35, 0.62, 1.33, -0.09),
    ("rgb20x24", [2, 0, 3, 1], 1.1, 0.9, 0.0, 0.05),
):
    img = to_pil(INPUTS[name])
    for fn in order:
        img = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue][fn](img, [b, c, s, h][fn])
    case("colorJitter", name, {"order": order, "brightness": b, "contrast": c, "saturation": s, "hue": h}, img)

# MoCo v2 GaussianBlur: PIL GaussianBlur(radius=sigma).
for name in ("rgb16", "rgb20x24", "grey16"):
    img = to_pil(INPUTS[name])
    for sigma in (0.1, 0.37, 0.8, 1.23, 1.7, 2.0):
        case("gaussianBlur", name, {"sigma": sigma}, img.filter(ImageFilter.GaussianBlur(radius=sigma)))

# Perspective: torchvision F.perspective (BILINEAR, fill 0), and the PIL warp alone with
# torchvision's own float32 coefficients.
PERSPECTIVES = [
    ("rgb16", [[3, 2], [13, 0], [15, 12], [1, 15]]),
    ("rgb16", [[0, 4], [11, 3], [12, 15], [4, 11]]),
    ("rgb20x24", [[5, 4], [22, 1], [18, 19], [0, 17]]),
    ("grey16", [[2, 2], [15, 3], [12, 12], [3, 15]]),
]
for name, end in PERSPECTIVES:
    img = to_pil(INPUTS[name])
    w, h = img.size
    start = [[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]]
    coeffs = TF._get_perspective_coeffs(start, end)
    out = TF.perspective(img, start, end, interpolation=TF.InterpolationMode.BILINEAR, fill=0)
    case("perspective", name, {"startpoints": start, "endpoints": end}, out, coefficients=coeffs)
    warp = img.transform(img.size, Image.PERSPECTIVE, coeffs, Image.BILINEAR, fillcolor=fill_for(img, 0))
    case("perspectiveWarp", name, {"coefficients": coeffs}, warp)

# AutoAugment operations as the CIFAR10Policy lambdas call PIL (fill colour 128).
def rotate_with_fill(img, degrees):
    rot = img.convert("RGBA").rotate(degrees)
    return Image.composite(rot, Image.new("RGBA", rot.size, (128,) * 4), rot).convert(img.mode)


def aa_op(img, op, magnitude, sign):
    fill = fill_for(img)
    if op == "shearX":
        return img.transform(img.size, Image.AFFINE, (1, magnitude * sign, 0, 0, 1, 0), Image.BICUBIC, fillcolor=fill)
    if op == "shearY":
        return img.transform(img.size, Image.AFFINE, (1, 0, 0, magnitude * sign, 1, 0), Image.BICUBIC, fillcolor=fill)
    if op == "translateX":
        return img.transform(img.size, Image.AFFINE, (1, 0, magnitude * img.size[0] * sign, 0, 1, 0), fillcolor=fill)
    if op == "translateY":
        return img.transform(img.size, Image.AFFINE, (1, 0, 0, 0, 1, magnitude * img.size[1] * sign), fillcolor=fill)
    if op == "rotate":
        return rotate_with_fill(img, magnitude)
    if op == "color":
        return ImageEnhance.Color(img).enhance(1 + magnitude * sign)
    if op == "posterize":
        return ImageOps.posterize(img, int(magnitude))
    if op == "solarize":
        return ImageOps.solarize(img, magnitude)
    if op == "contrast":
        return ImageEnhance.Contrast(img).enhance(1 + magnitude * sign)
    if op == "sharpness":
        return ImageEnhance.Sharpness(img).enhance(1 + magnitude * sign)
    if op == "brightness":
        return ImageEnhance.Brightness(img).enhance(1 + magnitude * sign)
    if op == "autocontrast":
        return ImageOps.autocontrast(img)
    if op == "equalize":
        return ImageOps.equalize(img)
    if op == "invert":
        return ImageOps.invert(img)
    raise ValueError(op)


def level_table(op):
    tables = {
        "shearX": np.linspace(0, 0.3, 10), "shearY": np.linspace(0, 0.3, 10),
        "translateX": np.linspace(0, 150 / 331, 10), "translateY": np.linspace(0, 150 / 331, 10),
        "rotate": np.linspace(0, 30, 10), "color": np.linspace(0.0, 0.9, 10),
        "posterize": np.round(np.linspace(8, 4, 10), 0).astype(int), "solarize": np.linspace(256, 0, 10),
        "contrast": np.linspace(0.0, 0.9, 10), "sharpness": np.linspace(0.0, 0.9, 10),
        "brightness": np.linspace(0.0, 0.9, 10),
    }
    return tables.get(op, [0] * 10)


for name in ("rgb16", "grey16", "lowcontrast16"):
    img = to_pil(INPUTS[name])
    levels = (2, 9) if name == "lowcontrast16" else (1, 4, 9)
    for op in ("shearX", "shearY", "translateX", "translateY", "rotate", "color", "posterize", "solarize",
               "contrast", "sharpness", "brightness"):
        for level in levels:
            magnitude = float(level_table(op)[level])
            for sign in (1, -1):
                case("autoaugment", name, {"op": op, "level": level, "magnitude": magnitude, "sign": sign},
                     aa_op(img, op, magnitude, sign))
    for op in ("autocontrast", "equalize", "invert"):
        case("autoaugment", name, {"op": op, "level": 0, "magnitude": 0, "sign": 1}, aa_op(img, op, 0, 1))

# RandomResizedCrop's crop + resize, Resize(int) and hflip as torchvision applies them to PIL
# images (BILINEAR: PIL's antialiased filter when shrinking).
BILINEAR = TF.InterpolationMode.BILINEAR
CROPS = {
    "rgb20x24": [(0, 0, 20, 24, 32), (3, 5, 11, 14, 8), (2, 1, 17, 9, 16), (0, 0, 20, 24, 20), (5, 7, 6, 6, 24), (1, 0, 19, 23, 5)],
    "grey16": [(1, 2, 13, 11, 7), (0, 0, 16, 16, 32), (6, 3, 4, 9, 12)],
    "rgb16": [(4, 4, 8, 8, 3), (0, 0, 16, 16, 16), (2, 9, 14, 7, 10)],
}
for name, boxes in CROPS.items():
    img = to_pil(INPUTS[name])
    for top, left, h, w, size in boxes:
        out = TF.resized_crop(img, top, left, h, w, [size, size], interpolation=BILINEAR)
        case("resizedCrop", name, {"top": top, "left": left, "height": h, "width": w, "size": size}, out)
for name in ("rgb20x24", "grey16", "rgb16"):
    img = to_pil(INPUTS[name])
    for size in (7, 12, 18, 31):
        case("resize", name, {"size": size}, TF.resize(img, size, interpolation=BILINEAR))
    case("hflip", name, {}, TF.hflip(img))

# ToTensor + Normalize (float32; stored as little-endian float32 in HWC order).
for name, mean, std in (
    ("rgb20x24", [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ("rgb16", [0.507, 0.487, 0.441], [0.267, 0.256, 0.276]),
    ("grey16", [0.2860], [0.3530]),
):
    t = TF.normalize(TF.to_tensor(to_pil(INPUTS[name])), mean, std)
    hwc = np.ascontiguousarray(t.permute(1, 2, 0).numpy().astype("<f4"))
    cases.append({"op": "toTensorNormalize", "input": name, "params": {"mean": mean, "std": std},
                  "output": base64.b64encode(hwc.tobytes()).decode("ascii"), "dtype": "float32"})

meta = {
    "generator": "packages/augment/scripts/gen-pil-reference.py",
    "pillow": PIL.__version__,
    "torchvision": torchvision.__version__,
    "numpy": np.__version__,
}
doc = {
    "meta": meta,
    "inputs": {k: {"height": v.shape[0], "width": v.shape[1], "channels": v.shape[2], "data": encode(v)} for k, v in INPUTS.items()},
    "cases": cases,
}
with open(OUT, "w") as f:
    json.dump(doc, f, separators=(",", ":"))
print(f"wrote {len(cases)} cases to {os.path.relpath(OUT)} ({os.path.getsize(OUT)} bytes); {meta}", file=sys.stderr)
