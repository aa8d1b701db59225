#!/usr/bin/env python3
"""The label run of the mint benchmark, scripted the way a user would with the usual Python libraries.

Same job as `suyuan_label_gen::run` on the A4 3x8 layout:

- serials of 13 digits: 2-digit key id, 10-digit sequence, ISO 7064 MOD 11,10 check digit;
- an Ed25519 signature (PyNaCl) over `suyuan-label-v1\\0` + key id byte + the 13 serial digits;
- the signature as 156 digits (9 chunks of 7 bytes as 17 digits each, the last byte as 3);
- the QR (segno, level M) carrying `HTTPS://HOST/` and the 169 digits as two segments, which
  segno puts in alphanumeric and numeric mode (version 6, like the Rust encoder); segno picks
  the mask by trying all eight, as its users get by default (`--mask 4` chooses one, as the
  Rust encoder does: about 1 ms per code instead of 5.5);
- A4 sheets of 3 x 8 labels drawn with reportlab: the QR as an image at 0.5 mm per module, the
  grouped short code under it, the product name and fields in Chinese with the WenQuanYi font
  registered as a TrueType font (reportlab embeds the subset it uses);
- one PDF per 2,400 labels and a manifest CSV (serial, short code, URL, file).

It runs in one process, as such a script does. The last line of its output is one JSON object
with labels/s, per-phase seconds, bytes per label, peak memory, the QR version, raw PyNaCl
signing speed and the public key (hex), so that the caller can check the labels it wrote.

    python peer_mint.py [--count 10000] [--out DIR] [--host trace.huaning.cn] [--font PATH]
                        [--mask 0-7]
"""

import argparse
import io
import json
import os
import sys
import time

import nacl.signing
import segno
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

TAG = b"suyuan-label-v1\0"
KEY_ID = 1
LABELS_PER_FILE = 2400
COLUMNS, ROWS = 3, 8
MARGIN_TOP = MARGIN_BOTTOM = 4.5 * mm
PADDING = 2 * mm
MODULE = 4 * 25.4 / 203 * mm  # 4 printer dots at 203 dpi
PRODUCT_NAME = "华宁柑橘 特级果"
FIELDS = ["品牌：华宁橘乡", "绿色食品 LB-18-2101234567", "产地：云南省玉溪市华宁县"]
DEFAULT_FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"


def check_digit(digits):
    """ISO 7064 MOD 11,10 over a string of decimal digits."""
    p = 10
    for ch in digits:
        s = (p + int(ch)) % 10 or 10
        p = (2 * s) % 11
    return (11 - p) % 10


def serial_digits(key_id, sequence):
    body = f"{key_id:02d}{sequence:010d}"
    return body + str(check_digit(body))


def grouped(serial):
    return f"{serial[:4]} {serial[4:8]} {serial[8:]}"


def signature_digits(signature):
    chunks = [
        f"{int.from_bytes(signature[i:i + 7], 'big'):017d}" for i in range(0, 63, 7)
    ]
    return "".join(chunks) + f"{signature[63]:03d}"


def peak_rss_mb():
    """VmHWM, as the Rust benchmark reports it. Not getrusage: its ru_maxrss survives exec, so a
    process started by a larger one reports the parent's peak."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--out", default="/tmp/suyuan-peer-mint")
    parser.add_argument("--host", default="trace.huaning.cn")
    parser.add_argument(
        "--font", default=os.environ.get("SUYUAN_LABEL_FONT") or DEFAULT_FONT
    )
    parser.add_argument("--mask", type=int, choices=range(8), default=None)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    pdfmetrics.registerFont(TTFont("WQY", args.font, subfontIndex=0))
    key = nacl.signing.SigningKey.generate()
    prefix = f"HTTPS://{args.host.upper()}/"

    page_w, page_h = A4
    cell_w = page_w / COLUMNS
    cell_h = (page_h - MARGIN_TOP - MARGIN_BOTTOM) / ROWS
    phases = {"sign": 0.0, "encode": 0.0, "layout": 0.0, "write": 0.0, "manifest": 0.0}
    files, pdf_bytes, versions = [], 0, set()
    manifest = open(os.path.join(args.out, "peer-manifest.csv"), "w", encoding="utf-8")
    manifest.write("serial,short_code,url,file\n")

    started = time.perf_counter()
    for first in range(0, args.count, LABELS_PER_FILE):
        count = min(LABELS_PER_FILE, args.count - first)
        name = f"peer-{len(files) + 1:04d}.pdf"
        path = os.path.join(args.out, name)

        t = time.perf_counter()
        labels = []
        for seq in range(first + 1, first + 1 + count):
            serial = serial_digits(KEY_ID, seq)
            signature = key.sign(TAG + bytes([KEY_ID]) + serial.encode()).signature
            labels.append((serial, serial + signature_digits(signature)))
        phases["sign"] += time.perf_counter() - t

        t = time.perf_counter()
        images = []
        for serial, digits in labels:
            qr = segno.make([prefix, digits], error="m", boost_error=False, mask=args.mask)
            versions.add(qr.version)
            png = io.BytesIO()
            qr.save(png, kind="png", scale=1)  # one pixel per module, 4-module quiet zone
            png.seek(0)
            images.append((ImageReader(png), qr.symbol_size(scale=1)[0]))
        phases["encode"] += time.perf_counter() - t

        t = time.perf_counter()
        c = canvas.Canvas(path, pagesize=A4)
        c.setTitle("Suyuan labels")
        for i, ((serial, _), (image, modules)) in enumerate(zip(labels, images)):
            slot = i % (COLUMNS * ROWS)
            if i and slot == 0:
                c.showPage()
            col, row = slot % COLUMNS, slot // COLUMNS
            x = col * cell_w
            top = page_h - MARGIN_TOP - row * cell_h
            side = modules * MODULE
            qr_y = top - PADDING - side
            c.drawImage(image, x + PADDING, qr_y, side, side)
            c.setFont("WQY", 6.5)
            c.drawCentredString(x + PADDING + side / 2, qr_y - 1.5 * mm, grouped(serial))
            text_x = x + PADDING + side + 0.5 * mm
            y = top - PADDING - 4 * MODULE - 9
            c.setFont("WQY", 9)
            c.drawString(text_x, y, PRODUCT_NAME)
            c.setFont("WQY", 5.5)
            for field in FIELDS:
                y -= 8
                c.drawString(text_x, y, field)
        phases["layout"] += time.perf_counter() - t

        t = time.perf_counter()
        c.save()
        phases["write"] += time.perf_counter() - t
        files.append(path)
        pdf_bytes += os.path.getsize(path)

        t = time.perf_counter()
        for serial, digits in labels:
            manifest.write(f"{serial},{grouped(serial)},https://{args.host}/{digits},{name}\n")
        phases["manifest"] += time.perf_counter() - t
    manifest.close()
    wall = time.perf_counter() - started

    # Raw signing speed, for the same ratio the Rust benchmark prints.
    n_raw = 5_000
    t = time.perf_counter()
    for seq in range(n_raw):
        key.sign(TAG + bytes([KEY_ID]) + serial_digits(KEY_ID, seq).encode())
    raw_sign_per_s = n_raw / (time.perf_counter() - t)

    print(
        json.dumps(
            {
                "labels": args.count,
                "files": len(files),
                "seconds": round(wall, 3),
                "labels_per_s": round(args.count / wall, 1),
                "phases_s": {k: round(v, 3) for k, v in phases.items()},
                "pdf_bytes": pdf_bytes,
                "bytes_per_label": round(pdf_bytes / max(args.count, 1), 1),
                "peak_rss_mb": peak_rss_mb(),
                "qr_versions": sorted(versions),
                "mask": "segno's best of 8" if args.mask is None else args.mask,
                "raw_sign_per_s": round(raw_sign_per_s, 1),
                "processes": 1,
                "key_id": KEY_ID,
                "public_key_hex": key.verify_key.encode().hex(),
                "manifest": manifest.name,
                "python": sys.version.split()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
