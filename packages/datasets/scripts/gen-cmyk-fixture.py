"""Regenerate test/fixtures/cmyk*.{jpg,rgb}: CMYK JPEGs written by PIL and the RGB PIL makes of
them with Image.open(f).convert('RGB') -- torchvision's default loader -- as raw bytes (HWC).

Run with Debian's Python and python3-pil: /usr/bin/python3 packages/datasets/scripts/gen-cmyk-fixture.py
"""
import os
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', 'test', 'fixtures')
os.makedirs(OUT, exist_ok=True)

W, H = 40, 24
img = Image.new('CMYK', (W, H))
px = img.load()
for y in range(H):
    for x in range(W):
        # Every ink in use, saturated and light areas, black from none to heavy.
        c = (x * 255) // (W - 1)
        m = (y * 255) // (H - 1)
        yy = ((x + y) * 37) % 256
        k = ((x // 8) * 60) % 256
        px[x, y] = (c, m, yy, k)

for name, options in [('cmyk', {}), ('cmyk-progressive', {'progressive': True})]:
    path = os.path.join(OUT, name + '.jpg')
    img.save(path, 'JPEG', quality=95, subsampling=0, **options)
    rgb = Image.open(path).convert('RGB')
    assert rgb.size == (W, H)
    with open(os.path.join(OUT, name + '.rgb'), 'wb') as f:
        f.write(rgb.tobytes())
    print(path, Image.open(path).mode, Image.__version__ if hasattr(Image, '__version__') else '')
