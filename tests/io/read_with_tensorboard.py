#!/usr/bin/env python3
"""Cross-check Ember's TensorBoard event files with TensorBoard's own reader (PyPI `tensorboard`).

Not part of `make test` (the suite never needs Python). Usage:
    python3 tests/io/read_with_tensorboard.py RUN_DIR
Prints the tags, every scalar, and the images and histograms that TensorBoard decodes.
"""
import sys

from tensorboard.backend.event_processing import event_accumulator

acc = event_accumulator.EventAccumulator(
    sys.argv[1], size_guidance={"images": 0, "scalars": 0, "histograms": 0})
acc.Reload()
tags = acc.Tags()
print("tags:", {k: v for k, v in tags.items() if v})
for tag in tags["scalars"]:
    print("scalar", tag, [(s.step, s.value) for s in acc.Scalars(tag)])
for tag in tags["images"]:
    for im in acc.Images(tag):
        print("image", tag, "step", im.step, f"{im.width}x{im.height}", len(im.encoded_image_string),
              "PNG bytes")
for tag in tags["histograms"]:
    for h in acc.Histograms(tag):
        v = h.histogram_value
        print("histogram", tag, "step", h.step, "num", v.num, "min", v.min, "max", v.max,
              "buckets", len(v.bucket))
