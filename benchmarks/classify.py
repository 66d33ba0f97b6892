"""Dense versus per-pixel patch inference of the pixel CNN, and against a numpy matmul.

Measured side by side in one run on this machine:
1. pixels/s of dense inference (the whole tile through the valid-convolution network, in the
   windows `classify` uses) and of per-pixel patch inference (the 7 x 7 patch of every pixel
   cut from the tile and run in large batches, same weights; also the network alone on patches
   cut beforehand), their ratio and the largest difference between the two;
2. the FLOP/s dense inference achieves (76.5 kFLOP per pixel) against a float32 numpy matmul;
3. with --precision, dense inference in mixed precision (`classify.precision`): its speed and
   how many pixels change class against float32 with the same weights.

    python benchmarks/classify.py [--size 2048] [--window 1024] [--precision bfloat16 float16]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CHANNELS = 8
PATCH_ROWS = 48  # rows of the tile classified patch by patch (enough to time it)


def flops_per_pixel(model) -> int:
    """Multiply-adds x 2 of every convolution at one output pixel of the dense network."""
    total = 0
    for layer in model.layers:
        if type(layer).__name__ == "Conv2D":
            kh, kw, cin, cout = layer.kernel.shape
            total += 2 * kh * kw * cin * cout
    return total


def best_of(runs: int, fn) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--window", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=8192)
    parser.add_argument("--precision", nargs="*", default=[], choices=["bfloat16", "float16"])
    args = parser.parse_args()

    import tensorflow as tf

    from watergee.models.pixelcnn import build_pixelcnn
    from watergee.models.predictor import in_precision

    devices = [d.device_type for d in tf.config.list_physical_devices()]
    print(f"TensorFlow {tf.__version__}, devices: {devices}")
    model = build_pixelcnn(CHANNELS)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if layer.get_weights():
            layer.set_weights(
                [rng.normal(0, 0.3, w.shape).astype(np.float32) for w in layer.get_weights()]
            )
    image = rng.normal(size=(args.size + 6, args.size + 6, CHANNELS)).astype(np.float32)
    fpp = flops_per_pixel(model)
    print(f"pixel CNN: {model.count_params()} parameters, {fpp / 1e3:.1f} kFLOP per pixel")

    def graph(network):
        return tf.function(lambda x: network(x, training=False), reduce_retracing=True)

    forward = graph(model)

    def dense(forward=forward) -> np.ndarray:
        out = np.empty((args.size, args.size, 2), np.float32)
        w = args.window
        for r in range(0, args.size, w):
            for c in range(0, args.size, w):
                h, v = min(w, args.size - r), min(w, args.size - c)
                block = image[r : r + h + 6, c : c + v + 6][None]
                out[r : r + h, c : c + v] = forward(tf.constant(block)).numpy()[0]
        return out

    dense()  # trace and warm up
    dense_seconds = best_of(3, dense)
    dense_result = dense()
    dense_pps = args.size**2 / dense_seconds

    rows = min(PATCH_ROWS, args.size)

    def cut(first: int, count: int) -> np.ndarray:
        """The 7 x 7 patch of every pixel in rows [first, first + count)."""
        band = image[first : first + count + 6]
        windows = np.lib.stride_tricks.sliding_window_view(band, (7, 7), axis=(0, 1))
        return np.ascontiguousarray(np.moveaxis(windows, 2, -1)).reshape(-1, 7, 7, CHANNELS)

    patches = cut(0, rows)
    per_batch = max(1, args.batch // args.size)  # rows of pixels per batch

    def per_patch_network() -> np.ndarray:
        outs = [
            forward(tf.constant(patches[i : i + args.batch])).numpy()
            for i in range(0, len(patches), args.batch)
        ]
        return np.concatenate(outs)[:, 0, 0, :]

    def per_patch_cut() -> np.ndarray:
        outs = [forward(tf.constant(cut(r, min(per_batch, rows - r)))).numpy()
                for r in range(0, rows, per_batch)]  # fmt: skip
        return np.concatenate(outs)[:, 0, 0, :]

    per_patch_network()
    network_seconds = best_of(2, per_patch_network)
    cut_seconds = best_of(2, per_patch_cut)
    patch_result = per_patch_network().reshape(rows, args.size, 2)
    network_pps = len(patches) / network_seconds
    patch_pps = len(patches) / cut_seconds
    difference = max(
        float(np.abs(patch_result - dense_result[:rows]).max()),
        float(np.abs(per_patch_cut().reshape(rows, args.size, 2) - dense_result[:rows]).max()),
    )

    n = 2048
    a = rng.normal(size=(n, n)).astype(np.float32)
    b = rng.normal(size=(n, n)).astype(np.float32)
    matmul_seconds = best_of(5, lambda: a @ b)
    matmul_flops = 2 * n**3 / matmul_seconds
    dense_flops = dense_pps * fpp

    shape = f"{args.size}x{args.size} px, {args.window} px windows"
    print(f"dense inference      {dense_pps / 1e6:8.2f} Mpx/s  ({shape})")
    print(f"per-pixel patches    {patch_pps / 1e6:8.2f} Mpx/s  (cut and run in batches)")
    print(f"  network alone      {network_pps / 1e6:8.2f} Mpx/s  (patches cut beforehand)")
    print(f"ratio dense / patch  {dense_pps / patch_pps:8.1f} x  ({dense_pps / network_pps:.1f} x "
          "against the network alone)")  # fmt: skip
    print(f"max |dense - patch|  {difference:8.1e}")
    print(f"dense FLOP/s         {dense_flops / 1e9:8.1f} GFLOP/s")
    print(f"numpy fp32 matmul    {matmul_flops / 1e9:8.1f} GFLOP/s  ({n}x{n})")
    print(f"ratio dense / matmul {dense_flops / matmul_flops:8.2f}")
    for precision in args.precision:
        mixed = graph(in_precision(model, precision))
        dense(mixed)
        seconds = best_of(3, lambda mixed=mixed: dense(mixed))
        result = dense(mixed)
        changed = int((result.argmax(-1) != dense_result.argmax(-1)).sum())
        print(f"dense in {precision:8s}    {args.size**2 / seconds / 1e6:8.2f} Mpx/s  "
              f"({dense_seconds / seconds:.2f} x float32; {changed} px of {args.size**2} change "
              f"class, {100 * changed / args.size**2:.3f} %; max |p - p32| "
              f"{float(np.abs(result - dense_result).max()):.1e})")  # fmt: skip


if __name__ == "__main__":
    main()
