#!/usr/bin/env python3
"""Print ops/vmath16.h's table of the normal tail Q(a) = erfc(a/sqrt 2)/2 for
the exp-free gelu: entry j the degree-6 Chebyshev interpolant of Q in
t = a - j/8 on |t| <= 1/16, j = 0..31 (0 <= a < 3.9375), computed with
mpmath at 60 digits, the coefficients rounded to float; row k holds t^k's
coefficient of every entry.
Run with Debian's python3 (python3-mpmath): /usr/bin/python3 scripts/gen_gelu_q.py"""
import struct
import mpmath as mp

mp.mp.dps = 60
DEG = 6


def q(a):
    return mp.erfc(a / mp.sqrt(2)) / 2


def f32(v):
    """v rounded once to the nearest float (24 bits; the values here are normal)."""
    with mp.workprec(24):
        r = +v
    return struct.unpack("f", struct.pack("f", float(r)))[0]   # exact: r is a float


def interval(c, h):
    """Monomial coefficients in t of the Chebyshev interpolant of Q(c + t), |t| <= h."""
    nodes = [h * mp.cos(mp.pi * (2 * i + 1) / (2 * (DEG + 1))) for i in range(DEG + 1)]
    m = mp.matrix([[t ** k for k in range(DEG + 1)] for t in nodes])
    return list(mp.lu_solve(m, mp.matrix([q(c + t) for t in nodes])))


def table(name, centres, h, comment):
    rows = [[0.0] * 32 for _ in range(DEG + 1)]
    for p, c in enumerate(centres):
        for k, v in enumerate(interval(c, h)):
            rows[k][p] = f32(v)
    print("/* %s */" % comment)
    print("static const float %s[%d][32] = {" % (name, DEG + 1))
    for k in range(DEG + 1):
        vals = ["%.8e" % v for v in rows[k]]
        print("    { " + ",\n     ".join(", ".join(vals[i:i + 4]) for i in range(0, 32, 4)) + " },")
    print("};")


table("tg_vm16_q8_tab", [mp.mpf(j) / 8 for j in range(32)], mp.mpf(1) / 16,
      "Q(a) around a = j/8, entry j = 0..31 (a < 3.9375)")
