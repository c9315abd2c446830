#!/usr/bin/env python3
"""Print the coefficients of ops/smx_row.h's 2^f = 1 + c1 f + ... + c5 f^5 on
|f| <= 1/2 (SMX_E2_C1..C5): the polynomial with p(0) = 1 exactly whose
largest relative error is least (Lawson's iteration of weighted least
squares), its coefficients rounded to float; then its error evaluated in
float arithmetic as the kernel has it (Horner, one rounding per FMA) over
random f, in units of the result's last place.
Run with Debian's python3 (python3-numpy): /usr/bin/python3 scripts/fit_exp2.py"""
import numpy as np

DEG = 5


def fit(deg):
    f = np.linspace(-0.5, 0.5, 40001)
    f = f[f != 0]
    y = 2.0 ** f
    v = np.vander(f, deg + 1, increasing=True)[:, 1:]
    w = np.ones_like(f)
    for _ in range(300):
        # relative error of 1 + v c against y, weighted
        c, *_ = np.linalg.lstsq(v * (np.sqrt(w) / y)[:, None], np.sqrt(w) * (1 - 1 / y), rcond=None)
        e = np.abs((1 + v @ c) / y - 1)
        w = w * e
        w /= w.sum()
    return np.concatenate([[1.0], c]), e.max()


def main():
    c, e = fit(DEG)
    c32 = c.astype(np.float32)
    f = (np.random.default_rng(1).random(4000000) - 0.5).astype(np.float32)
    p = np.full_like(f, c32[DEG])
    for k in range(DEG - 1, -1, -1):   # FMA: the product exact, one rounding
        p = (p.astype(np.float64) * f + c32[k]).astype(np.float32)
    ref = 2.0 ** f.astype(np.float64)
    ulp = np.abs(p - ref) / np.spacing(ref.astype(np.float32)).astype(np.float64)
    print("relative error of the fit %.3g; in float: %.3f ulp at most, mean relative %.3g"
          % (e, ulp.max(), ((p - ref) / ref).mean()))
    for k in range(1, DEG + 1):
        print("#define SMX_E2_C%d %.9ef" % (k, c32[k]))


if __name__ == "__main__":
    main()
