"""Batched technical indicators on [S, T] tensors that reproduce TA-Lib.

Layout
------
Every input is a tensor shaped ``[S, T]``: S symbols, T bars. Each symbol's series is
LEFT-aligned (its first bar is column 0) and padded with NaN at the END when it is shorter
than T. Outputs of the functions below may carry a NaN *prefix* (their warm-up); every function
accepts such inputs and starts its own warm-up where its input becomes valid, which is how
chained indicators (MACD's signal line, WaveTrend, the stochastic's slow lines) are built. The
valid (non-NaN) part of every row is therefore one contiguous block ``[start, end)``.

Every function returns ``[S, T]`` tensors (same dtype and device as the input) that are NaN
exactly where TA-Lib's output is NaN for that symbol on its own (warm-up; TA-Lib defaults:
default compatibility, unstable period 0) and in the padding, and equal to TA-Lib's values
elsewhere to rounding (float64: ~1e-10 relative or better away from zero crossings; the tests
ask for 1e-6).

Causality: every output at bar t depends on inputs at bars <= t only.

How it is made fast
-------------------
* Recursive smoothers (EMA; Wilder's averages in RSI, ATR, ±DI, ADX) are the linear
  recurrence ``y_t = a*y_{t-1} + u_t``. A Python loop over 5,000 bars would cost ~50 ms per
  indicator; :func:`linear_scan` solves it exactly in chunks of L bars instead: one matmul with
  an [L, L] lower-triangular matrix of powers of ``a`` solves every chunk from a zero state,
  the chunk-end states are chained by the same recurrence with coefficient ``a**L`` (solved
  recursively, T/L values), and chunk c then gets ``state_{c-1} * a**(i+1)`` added at offset
  i. TA-Lib's SMA seeding is exact: the seed value goes into ``u`` at the seed bar, zeros before.
* Rolling sums use cumulative-sum differences (in float64 whatever the working dtype);
  rolling variances the same against a block-local reference (see :func:`_moments_k`: a
  global cumsum of squares loses digits on a series that wandered far); rolling max/min a
  doubling scheme (log2(n) exact elementwise maxima); the CCI's mean absolute deviation,
  which needs each window's own mean, ``unfold`` over a few symbols at a time.
* Every public function processes symbols in chunks of ~``CHUNK_ELEMENTS`` values
  (:func:`_rowwise`): the indicators are independent per row, and on this 2-core CPU an
  elementwise op over a 4 MB chunk (in L2/L3 cache) is ~2.5x faster per element than over a
  20 MB [500, 5000] tensor streamed from memory.
* ``torch.where``/``masked_fill`` with bool masks are several times slower than arithmetic on
  CPU, so warm-ups are applied by slicing when all rows share a start (the usual case), and
  division-by-zero guards use ``nan_to_num`` after the division.

Garbage before a warm-up is kept finite (zeros before a seed, ``nan_to_num`` after a
division), because a NaN would poison a cumulative sum, and inside :func:`linear_scan` a NaN
would leak to EARLIER bars of its chunk through the matmul's zero entries (0 * NaN = NaN).
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from trendfactory import portable_math as pmath

__all__ = [
    "CHUNK_ELEMENTS",
    "chunk_rows",
    "linear_scan",
    "rolling_sum",
    "rolling_max",
    "rolling_min",
    "sma",
    "ema",
    "stddev",
    "rolling_mean_std",
    "bbands",
    "rsi",
    "macd",
    "trange",
    "atr",
    "plus_di",
    "minus_di",
    "dmi",
    "adx",
    "cci",
    "stoch",
    "wavetrend",
    "wavetrend_lookbacks",
    "cross_above",
    "cross_below",
]

_NAN = float("nan")

#: values per symbol chunk (rows * T) processed at once by every public function on CPU:
#: 2**19 float64 values = 4 MB per tensor, which keeps an indicator's temporaries in cache.
CHUNK_ELEMENTS = 1 << 19
#: the same on CUDA, where big batches amortise kernel launches (64 MB of float32)
CUDA_CHUNK_ELEMENTS = 1 << 24

#: chunk length L of the linear-recurrence scan (an [L, L] matmul per chunk): L MACs per value;
#: 16 measured fastest here (8 leaves BLAS too little work per call, 32 and 64 do more flops)
SCAN_CHUNK = 16


# ----------------------------------------------------------------------------------------------
# plumbing: row chunks, spans, masks
# ----------------------------------------------------------------------------------------------


def chunk_rows(T: int, device: torch.device | str = "cpu") -> int:
    """Symbols per chunk for series of T bars on ``device`` (at least 1)."""
    per = CUDA_CHUNK_ELEMENTS if torch.device(device).type == "cuda" else CHUNK_ELEMENTS
    return max(1, per // max(T, 1))


def _rowwise(fn):
    """Run ``fn`` on chunks of rows (symbols) and concatenate: every indicator is independent
    per row, and chunks of ~CHUNK_ELEMENTS values stay in cache. Tensor positional arguments
    are split along dim 0; everything else is passed through."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        first = next(a for a in args if isinstance(a, Tensor))
        if first.dim() != 2:
            raise ValueError(f"indicators expect [S, T] tensors; got shape {tuple(first.shape)}")
        S, T = first.shape
        if S == 0 or T == 0:
            # nothing to compute: run once on a [1, 1] NaN probe for the output structure
            probe = fn(
                *(torch.full((1, 1), _NAN, dtype=a.dtype, device=a.device) if isinstance(a, Tensor) else a for a in args),
                **kwargs,
            )
            empty = lambda p: torch.full((S, T), _NAN, dtype=p.dtype, device=p.device)  # noqa: E731
            return tuple(empty(p) for p in probe) if isinstance(probe, tuple) else empty(probe)
        rows = chunk_rows(T, first.device)
        if S <= rows:
            return fn(*args, **kwargs)
        parts = [fn(*(a[s : s + rows] if isinstance(a, Tensor) else a for a in args), **kwargs) for s in range(0, S, rows)]
        if isinstance(parts[0], tuple):
            return tuple(torch.cat(p, 0) for p in zip(*parts))
        return torch.cat(parts, 0)

    return wrapper


def _check(*xs: Tensor | None) -> None:
    shape = None
    for x in xs:
        if x is None:
            continue
        if x.dim() != 2:
            raise ValueError(f"indicators expect [S, T] tensors; got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"indicators expect a float tensor; got {x.dtype}")
        if shape is not None and x.shape != shape:
            raise ValueError(f"inputs must share one shape; got {tuple(shape)} and {tuple(x.shape)}")
        shape = x.shape


class _Span:
    """The valid block ``[start, end)`` of each row, and the masks derived from it.

    ``start``/``end``: [S] int64. ``s0``: the common start when all rows share it (then masks
    and seeds are plain slices), else None.
    """

    def __init__(self, start: Tensor, end: Tensor, T: int):
        self.start, self.end, self.T = start, end, T
        S = start.shape[0]
        lo = int(start.min()) if S else 0
        self.s0 = lo if S == 0 or int(start.max()) == lo else None
        self.padded = bool(S) and int(end.min()) < T
        self._t: Tensor | None = None

    @staticmethod
    def of(x: Tensor) -> "_Span":
        S, T = x.shape
        valid = ~torch.isnan(x)  # [S, T]
        count = valid.sum(1)  # [S]
        if S and bool(valid[:, 0].all()):
            start = torch.zeros(S, dtype=torch.long, device=x.device)
        else:
            start = valid.to(torch.uint8).argmax(1)  # first valid bar (0 when none)
            start = torch.where(count > 0, start, torch.full_like(start, T))
        return _Span(start, start + count, T)

    def after(self, k: int) -> "_Span":
        """The span of a derived series whose first k bars are warm-up."""
        sp = _Span.__new__(_Span)
        sp.start, sp.end, sp.T = self.start + k, self.end, self.T
        sp.s0 = None if self.s0 is None else self.s0 + k
        sp.padded, sp._t = self.padded, self._t
        return sp

    def repeat(self, k: int) -> "_Span":
        """The span of k row-stacked copies ([k*S, T])."""
        return _Span(self.start.repeat(k), self.end.repeat(k), self.T)

    def _arange(self, device) -> Tensor:
        if self._t is None:
            self._t = torch.arange(self.T, device=device)
        return self._t

    def mask(self, out: Tensor, lookback: int) -> Tensor:
        """NaN before start + lookback and from end on (in place)."""
        if self.s0 is not None:
            out[:, : min(self.s0 + lookback, self.T)] = _NAN
        else:
            t = self._arange(out.device)
            out.masked_fill_(t[None, :] < (self.start + lookback)[:, None], _NAN)
        if self.padded:
            t = self._arange(out.device)
            out.masked_fill_(t[None, :] >= self.end[:, None], _NAN)
        return out

    def zero_before(self, u: Tensor, offset: int) -> Tensor:
        """u[s, t] = 0 for t < start[s] + offset (in place)."""
        if self.s0 is not None:
            u[:, : max(0, min(self.s0 + offset, u.shape[1]))] = 0.0
        else:
            t = torch.arange(u.shape[1], device=u.device)
            u.mul_(t[None, :] >= (self.start + offset)[:, None])
        return u

    def put(self, u: Tensor, offset: int, values: Tensor) -> None:
        """u[s, start[s] + offset] = values[s] where that bar exists."""
        if self.s0 is not None:
            if self.s0 + offset < self.T:
                u[:, self.s0 + offset] = values
            return
        idx = self.start + offset
        rows = torch.nonzero(idx < self.T).squeeze(1)
        u[rows, idx[rows]] = values[rows]

    def window_sum(self, x0: Tensor, last_offset: int, m: int) -> Tensor:
        """[S]: sum of x0[s, start+last_offset-m+1 ..= start+last_offset] (0 if out of range)."""
        if self.s0 is not None:
            hi = self.s0 + last_offset + 1
            if hi > self.T or hi - m < 0:
                return x0.new_zeros(x0.shape[0])
            return x0[:, hi - m : hi].sum(1)
        last = self.start + last_offset
        idx = last[:, None] - m + 1 + torch.arange(m, device=x0.device)[None, :]  # [S, m]
        ok = (idx >= 0) & (last[:, None] < self.T)
        vals = x0.gather(1, idx.clamp(0, self.T - 1))  # [S, m]
        return (vals * ok).sum(1)


def _clean(x: Tensor) -> Tensor:
    """NaN -> 0: the kernels need finite values everywhere (see the module docstring)."""
    return torch.nan_to_num(x, nan=0.0)


# ----------------------------------------------------------------------------------------------
# the exact chunked linear-recurrence scan
# ----------------------------------------------------------------------------------------------


def _pow(a: float, e: Tensor) -> Tensor:
    return torch.pow(torch.tensor(a, dtype=torch.float64, device=e.device), e)


def _scan_padded(u: Tensor, a: float, L: int) -> Tensor:
    """linear_scan for u: [B, C*L] (width a multiple of L). Returns [B, C*L].

    Within chunk c the solution is y[c, i] = sum_j P[i, j] u[c, j] + a**(i+1) * s_{c-1}, with
    P[i, j] = a**(i-j) (j <= i) and s_{c-1} the state at the end of the previous chunk: one
    matmul gives the first term for every chunk (a zero initial state); the chunk-end states
    obey s_c = a**L s_{c-1} + last_c (last_c: chunk c's own end value), the same recurrence on
    a C-long series, solved recursively; a rank-1 update adds the second term.
    """
    B, W = u.shape
    C = W // L
    i = torch.arange(L, device=u.device, dtype=torch.float64)
    e = i[:, None] - i[None, :]  # [L, L] exponent i - j
    P = _pow(a, e.clamp(min=0)) * (e >= 0)  # [L, L] lower-triangular a**(i-j), float64
    U = u.reshape(B * C, L)  # [B*C, L]: one row per chunk
    if u.is_cuda and u.dtype != torch.float64:
        # CUDA float32 matmuls may run in TF32 (10-bit mantissa) when a caller enabled it;
        # the scan is a small share of the work there, so it runs in float64
        Y = (U.double() @ P.T).to(u.dtype)
    else:
        Y = U @ P.T.to(u.dtype)  # [B*C, L]: every chunk solved from a zero initial state
    if C > 1:
        last = Y[:, L - 1].reshape(B, C)  # [B, C]: chunk-end value from the chunk's own inputs
        aL = a**L
        if aL != 0.0:
            Cp = -(-C // L) * L
            last = torch.nn.functional.pad(last, (0, Cp - C)) if Cp != C else last.contiguous()
            last = _scan_padded(last, aL, L)[:, :C]  # [B, C]: s_c, the state at chunk c's end
        carry = torch.zeros_like(last)  # [B, C]: the state entering chunk c is s_{c-1}
        carry[:, 1:] = last[:, :-1]
        pw = _pow(a, i + 1).to(u.dtype)  # [L]: a**(i+1)
        Y.addr_(carry.reshape(B * C), pw)  # Y[c, i] += s_{c-1} * a**(i+1): rank-1 update
    return Y.reshape(B, W)


def linear_scan(u: Tensor, a: float, chunk: int = SCAN_CHUNK) -> Tensor:
    """Solve y[:, t] = a * y[:, t-1] + u[:, t] with y[:, -1] = 0 for u: [B, T]; returns [B, T].

    Exact (the impulse response is never truncated), O(B*T*L) work in matmuls. ``u`` must be
    finite: a NaN would leak into earlier bars of its chunk through the matmul.
    """
    if u.dim() != 2:
        raise ValueError(f"linear_scan expects [B, T]; got {tuple(u.shape)}")
    B, T = u.shape
    if B == 0 or T == 0:
        return u.clone()
    L = max(1, min(chunk, T))
    W = -(-T // L) * L
    up = torch.nn.functional.pad(u, (0, W - T)) if W != T else u.contiguous()  # [B, W]
    return _scan_padded(up, a, L)[:, :T]


def _seeded_scan(x0: Tensor, sp: _Span, a: float, b: float, seed_off: int, seed_val: Tensor) -> Tensor:
    """y = seed_val at bar start+seed_off, then y_t = a*y_{t-1} + b*x0_t; 0 before the seed.

    x0: [S, T] finite; seed_val: [S]. Returns an [S, T] view (finite everywhere).
    """
    S, T = x0.shape
    L = max(1, min(SCAN_CHUNK, T))
    W = -(-T // L) * L
    u = torch.empty(S, W, dtype=x0.dtype, device=x0.device)  # [S, W]: W = T rounded up to L
    torch.mul(x0, b, out=u[:, :T])
    u[:, T:] = 0.0
    sp.zero_before(u, seed_off + 1)  # no input up to and including the seed bar ...
    sp.put(u, seed_off, seed_val.to(u.dtype))  # ... where the seed itself goes
    return _scan_padded(u, a, L)[:, :T]


# ----------------------------------------------------------------------------------------------
# rolling windows (kernels take finite inputs and return unmasked outputs)
# ----------------------------------------------------------------------------------------------


def _rsum_k(x0: Tensor, n: int) -> Tensor:
    """Trailing n-bar sum; bars < n-1 see a partial window. Cumulative sums in float64 (a
    float32 cumsum over thousands of bars loses ~1e-5 relative)."""
    cs = x0.to(torch.float64).cumsum(1)  # [S, T]
    return _window_diff(cs, n).to(x0.dtype)


def _sma_k(x0: Tensor, n: int) -> Tensor:
    if n <= 4:
        # short windows (stochastic smoothing, WaveTrend signal): a direct sum of n shifted
        # copies, so an all-zero window is exactly 0 as in TA-Lib (a cumsum difference leaves
        # ~1e-14 of rounding there)
        tot = x0.clone()
        for k in range(1, n):
            tot[:, k:] += x0[:, :-k]
        return tot.div_(n)
    return _rsum_k(x0, n).div_(n)


def _extreme_k(x0: Tensor, n: int, op) -> Tensor:
    """Trailing max/min over n bars by doubling: after step k, m covers 2**k bars; two
    overlapping blocks of w = 2**floor(log2 n) bars cover any window of n. Exact.
    Bars < n-1 see a partial window. Returns a new tensor."""
    m = x0.clone()
    w = 1
    while 2 * w <= n:
        nxt = m.clone()
        op(m[:, w:], m[:, :-w], out=nxt[:, w:])  # nxt covers 2w bars
        m, w = nxt, 2 * w
    if w < n:
        k = n - w
        nxt = m.clone()
        op(m[:, k:], m[:, :-k], out=nxt[:, k:])
        m = nxt
    return m


def _moments_k(x0: Tensor, sp: _Span, windows) -> list[tuple[Tensor, Tensor]]:
    """[(mean, population variance)] over trailing n bars for each n in ``windows``, unmasked.

    E[d^2] - E[d]^2 from cumulative sums cancels badly when the std is small next to how far
    the series wanders from the reference d is taken against (a stock that rose from 3 to 300
    has std 0.006 at 3: a global cumsum of d^2 then loses ~1e-5 of the variance; TA-Lib is
    exact there). So the reference is LOCAL: bars are cut in blocks of B (>= 4 max(windows))
    bars, each block gets its own reference (one of its own values), and the cumulative sums
    run over the block plus the m = max(windows) - 1 bars before it -- every window ending in
    the block lies inside, and no sum spans more than B + m bars. A variance at the level of
    the sums' rounding noise is a flat window and is set to exactly 0 (TA-Lib reports 0).
    Shapes: x [S, T] -> left-extended [S, m + W] (W = nb*B) -> overlapping blocks
    [S, nb, B + m] (an unfold view) -> sums [S, nb, B + m + 1] -> per-bar [S, nb, B] -> [S, T].
    """
    S, T = x0.shape
    m = max(windows) - 1  # overlap: the bars before a block that its windows reach
    B = max(128, 4 * (m + 1))  # block length
    nb = -(-T // B)
    W = nb * B
    x = x0.to(torch.float64)
    first = x.gather(1, sp.start.clamp(max=max(T - 1, 0))[:, None])  # [S, 1]
    if sp.s0 != 0:
        # a NaN prefix (zeros after _clean) would sit in the sums of the first block: give it
        # the row's first valid value instead (those windows are masked anyway)
        t = torch.arange(T, device=x.device)
        x = torch.where(t[None, :] < sp.start[:, None], first, x)
    xp = torch.empty(S, m + W, dtype=torch.float64, device=x.device)  # [S, m + W]
    xp[:, :m] = first  # before bar 0: the first value (d = 0 there, no rounding)
    xp[:, m : m + T] = x
    xp[:, m + T :] = 0.0  # padding only feeds windows that end in padding
    ext = xp.unfold(1, B + m, B)  # [S, nb, B + m] view: block b = bars b*B - m .. b*B + B - 1
    # reference of block b: the row's value at bar b*B, clamped into its valid span
    at = torch.arange(nb, device=x.device)[None, :] * B  # [1, nb]
    at = torch.minimum(torch.maximum(at, sp.start[:, None]), (sp.end - 1).clamp(min=0)[:, None])
    ref = xp.gather(1, at.clamp(max=W - 1) + m).unsqueeze(-1)  # [S, nb, 1]
    d = ext - ref  # [S, nb, B + m]
    cs1 = torch.zeros(S, nb, B + m + 1, dtype=torch.float64, device=x.device)  # leading 0
    cs2 = torch.zeros_like(cs1)
    torch.cumsum(d, -1, out=cs1[..., 1:])
    torch.cumsum(d.mul_(d), -1, out=cs2[..., 1:])
    del d
    out = []
    for n in windows:
        # bar i of block b is ext index m + i: window sum = cs[m+i+1] - cs[m+i+1-n]
        hi, lo = slice(m + 1, m + 1 + B), slice(m + 1 - n, m + 1 - n + B)
        s1 = (cs1[..., hi] - cs1[..., lo]).div_(n)  # [S, nb, B] E[d]
        s2 = (cs2[..., hi] - cs2[..., lo]).div_(n)  # [S, nb, B] E[d^2]
        var = s2 - s1 * s1
        # flat window -> exactly 0 (also removes tiny negatives): the rounding noise of var is
        # ~eps * cs2 / n, so anything below 1e-12 * cs2 / n (~4500 eps) is indistinguishable
        # from 0 -- for prices that is a std below ~1e-6 of the local price swing
        var.mul_(var > cs2[..., hi] * (1e-12 / n))
        mean = s1.add_(ref)
        out.append((mean.view(S, W)[:, :T].to(x0.dtype), var.view(S, W)[:, :T].to(x0.dtype)))
    return out


def _window_diff(cs: Tensor, n: int) -> Tensor:
    """Trailing n-bar sums from a cumulative sum: cs[t] - cs[t-n] (cs[t] for t < n)."""
    if n >= cs.shape[1]:
        return cs.clone()
    out = torch.empty_like(cs)
    out[:, :n] = cs[:, :n]
    torch.sub(cs[:, n:], cs[:, :-n], out=out[:, n:])
    return out


def _var_k(x0: Tensor, sp: _Span, n: int) -> tuple[Tensor, Tensor]:
    """(mean, population variance) over trailing n bars, unmasked (see _moments_k)."""
    return _moments_k(x0, sp, (n,))[0]


@_rowwise
def rolling_sum(x: Tensor, n: int) -> Tensor:
    """Trailing sum of n bars (TA-Lib SUM): first value at bar start + n - 1."""
    _check(x)
    sp = _Span.of(x)
    return sp.mask(_rsum_k(_clean(x), n), n - 1)


@_rowwise
def rolling_max(x: Tensor, n: int) -> Tensor:
    """Trailing maximum over n bars (TA-Lib MAX)."""
    _check(x)
    sp = _Span.of(x)
    return sp.mask(_extreme_k(_clean(x), n, torch.maximum), n - 1)


@_rowwise
def rolling_min(x: Tensor, n: int) -> Tensor:
    """Trailing minimum over n bars (TA-Lib MIN)."""
    _check(x)
    sp = _Span.of(x)
    return sp.mask(_extreme_k(_clean(x), n, torch.minimum), n - 1)


@_rowwise
def sma(x: Tensor, n: int = 30) -> Tensor:
    """Simple moving average (TA-Lib SMA): first value at bar start + n - 1."""
    _check(x)
    sp = _Span.of(x)
    return sp.mask(_sma_k(_clean(x), n), n - 1)


@_rowwise
def rolling_mean_std(x: Tensor, windows: tuple[int, ...]) -> tuple[Tensor, ...]:
    """Rolling mean and population std (TA-Lib SMA and STDDEV) for several windows from one
    pass of cumulative sums: returns (mean_n1, std_n1, mean_n2, std_n2, ...), each first
    valid at bar start + n - 1."""
    _check(x)
    sp = _Span.of(x)
    out: list[Tensor] = []
    for n, (mean, var) in zip(windows, _moments_k(_clean(x), sp, tuple(windows))):
        out += [sp.mask(mean, n - 1), sp.mask(pmath.sqrt(var), n - 1)]
    return tuple(out)


@_rowwise
def stddev(x: Tensor, n: int = 5, nbdev: float = 1.0) -> Tensor:
    """Population standard deviation over n bars times nbdev (TA-Lib STDDEV)."""
    _check(x)
    sp = _Span.of(x)
    _, var = _var_k(_clean(x), sp, n)
    out = pmath.sqrt(var)
    if nbdev != 1.0:
        out.mul_(nbdev)
    return sp.mask(out, n - 1)


@_rowwise
def bbands(x: Tensor, n: int = 5, nbdev_up: float = 2.0, nbdev_dn: float = 2.0) -> tuple[Tensor, Tensor, Tensor]:
    """Bollinger bands around an SMA (TA-Lib BBANDS, matype=0): (upper, middle, lower)."""
    _check(x)
    sp = _Span.of(x)
    mid, var = _var_k(_clean(x), sp, n)
    sd = pmath.sqrt(var)
    upper = mid + nbdev_up * sd
    lower = mid - nbdev_dn * sd
    return sp.mask(upper, n - 1), sp.mask(mid, n - 1), sp.mask(lower, n - 1)


# ----------------------------------------------------------------------------------------------
# exponential and Wilder smoothing
# ----------------------------------------------------------------------------------------------


def _ema_k(x0: Tensor, sp: _Span, n: int, seed_off: int | None = None) -> Tensor:
    """TA-Lib EMA (k = 2/(n+1)) seeded by the mean of the n values ending at bar
    start + seed_off (default n - 1). Unmasked; 0 before the seed."""
    if seed_off is None:
        seed_off = n - 1
    k = 2.0 / (n + 1)
    seed_val = sp.window_sum(x0, seed_off, n) / n
    return _seeded_scan(x0, sp, 1.0 - k, k, seed_off, seed_val)


@_rowwise
def ema(x: Tensor, n: int = 30) -> Tensor:
    """Exponential moving average, k = 2/(n+1), seeded with the SMA of the first n values
    (TA-Lib EMA): first value at bar start + n - 1."""
    _check(x)
    sp = _Span.of(x)
    return sp.mask(_ema_k(_clean(x), sp, n), n - 1)


def _rsi_k(x0: Tensor, sp: _Span, n: int) -> Tensor:
    S, T = x0.shape
    gl = torch.empty(2, S, T, dtype=x0.dtype, device=x0.device)  # [2, S, T]: gains, losses
    gl[:, :, 0] = 0.0
    torch.sub(x0[:, 1:], x0[:, :-1], out=gl[0, :, 1:])  # change into bar t
    torch.neg(gl[0, :, 1:], out=gl[1, :, 1:])
    gl.clamp_(min=0.0)
    gl = gl.view(2 * S, T)  # [2S, T]: one scan for both (same coefficient)
    sp2 = sp.repeat(2) if sp.s0 is None else sp  # s0 slicing works for any row count
    seed_val = sp2.window_sum(gl, n, n) / n  # mean of the changes at bars start+1 .. start+n
    avg = _seeded_scan(gl, sp2, (n - 1) / n, 1.0 / n, n, seed_val)  # [2S, T]
    g, l = avg[:S], avg[S:]
    out = g / (g + l)
    # TA-Lib: RSI = 0 when there was no movement at all (0/0 here)
    return out.mul_(100.0).nan_to_num_(nan=0.0)


@_rowwise
def rsi(x: Tensor, n: int = 14) -> Tensor:
    """Wilder's RSI (TA-Lib RSI): average gain/loss seeded with the mean of the first n
    one-bar changes, then avg = (avg*(n-1) + change)/n; first value at bar start + n."""
    _check(x)
    sp = _Span.of(x)
    return sp.mask(_rsi_k(_clean(x), sp, n), n)


def _macd_k(x0: Tensor, sp: _Span, fast: int, slow: int, signal: int):
    seed_off = slow - 1
    slow_ema = _ema_k(x0, sp, slow, seed_off)
    # TA-Lib seeds the FAST EMA with the mean of the `fast` values ending at the slow EMA's
    # seed bar, not at start + fast - 1 like a standalone EMA(fast)
    fast_ema = _ema_k(x0, sp, fast, seed_off)
    line = fast_ema.sub_(slow_ema)  # 0 before the seed bar: finite
    sig = _ema_k(line, sp.after(seed_off), signal)
    hist = line - sig
    return line, sig, hist


@_rowwise
def macd(x: Tensor, fast: int = 12, slow: int = 26, signal: int = 9) -> tuple[Tensor, Tensor, Tensor]:
    """MACD (TA-Lib MACD): (macd, signal, hist), all first valid at start + slow-1 + signal-1."""
    _check(x)
    if slow < fast:
        fast, slow = slow, fast
    sp = _Span.of(x)
    lb = slow - 1 + signal - 1
    return tuple(sp.mask(v, lb) for v in _macd_k(_clean(x), sp, fast, slow, signal))  # type: ignore[return-value]


# ----------------------------------------------------------------------------------------------
# high/low indicators
# ----------------------------------------------------------------------------------------------


def _trange_k(h0: Tensor, l0: Tensor, c0: Tensor, out: Tensor | None = None) -> Tensor:
    """True range: max(h, prev close) - min(l, prev close); bar 0 gets h - l (unused)."""
    out = torch.empty_like(h0) if out is None else out
    pc = c0[:, :-1]
    tmp = torch.minimum(l0[:, 1:], pc)
    torch.maximum(h0[:, 1:], pc, out=out[:, 1:])
    out[:, 1:] -= tmp
    out[:, 0] = h0[:, 0] - l0[:, 0]
    return out


@_rowwise
def trange(high: Tensor, low: Tensor, close: Tensor) -> Tensor:
    """True range (TA-Lib TRANGE): first value at bar start + 1."""
    _check(high, low, close)
    sp = _Span.of(high + low + close)
    return sp.mask(_trange_k(_clean(high), _clean(low), _clean(close)), 1)


def _atr_k(h0: Tensor, l0: Tensor, c0: Tensor, sp: _Span, n: int) -> Tensor:
    tr = _trange_k(h0, l0, c0)
    seed_val = sp.window_sum(tr, n, n) / n  # mean of TR at bars start+1 .. start+n
    return _seeded_scan(tr, sp, (n - 1) / n, 1.0 / n, n, seed_val)


@_rowwise
def atr(high: Tensor, low: Tensor, close: Tensor, n: int = 14) -> Tensor:
    """Average true range (TA-Lib ATR): mean of TR over bars start+1..start+n, then
    atr = (atr*(n-1) + tr)/n; first value at bar start + n."""
    _check(high, low, close)
    sp = _Span.of(high + low + close)
    return sp.mask(_atr_k(_clean(high), _clean(low), _clean(close), sp, n), n)


def _dmi_k(h0: Tensor, l0: Tensor, c0: Tensor, sp: _Span, n: int) -> tuple[Tensor, Tensor, Tensor]:
    """Unmasked (+DI, -DI, ADX) as TA-Lib computes them.

    TA-Lib keeps Wilder running SUMS of +DM, -DM and TR: the n-1 values at bars
    start+1 .. start+n-1, then each bar sum = sum - sum/n + value; DI = 100 * DM_sum / TR_sum
    (0 when TR_sum is 0) from bar start+n; DX = 100 |+DI - -DI| / (+DI + -DI); ADX = mean of
    the n DX at bars start+n .. start+2n-1, then (adx*(n-1) + dx)/n -- and where DX is
    undefined (no range or no directional movement) TA-Lib skips the bar: ADX holds.
    """
    S, T = h0.shape
    buf = torch.empty(3, S, T, dtype=h0.dtype, device=h0.device)  # [3, S, T]: +DM, -DM, TR
    buf[:2, :, 0] = 0.0
    up = h0[:, 1:] - h0[:, :-1]  # [S, T-1] high - previous high
    dn = l0[:, :-1] - l0[:, 1:]  # [S, T-1] previous low - low
    # +DM = up where up > 0 and up > dn; -DM = dn where dn > 0 and dn > up
    torch.mul(up, up > dn.clamp(min=0.0), out=buf[0, :, 1:])
    torch.mul(dn, dn > up.clamp(min=0.0), out=buf[1, :, 1:])
    del up, dn
    _trange_k(h0, l0, c0, out=buf[2])
    flat = buf.view(3 * S, T)  # [3S, T]: one scan for all three (same coefficient)
    sp3 = sp.repeat(3) if sp.s0 is None else sp
    seed_val = sp3.window_sum(flat, n - 1, n - 1)  # sum of bars start+1 .. start+n-1
    sums = _seeded_scan(flat, sp3, (n - 1) / n, 1.0, n - 1, seed_val)  # [3S, T]
    pdm, mdm, tr = sums[:S], sums[S : 2 * S], sums[2 * S :]
    pdi = (pdm / tr).mul_(100.0).nan_to_num_(nan=0.0)  # TR_sum 0 => DM_sum 0: 0/0 -> 0
    mdi = (mdm / tr).mul_(100.0).nan_to_num_(nan=0.0)
    tot = pdi + mdi
    dx = (pdi - mdi).abs_().div_(tot).mul_(100.0).nan_to_num_(nan=0.0)  # undefined -> 0
    seed_off = 2 * n - 1
    seed_val = sp.window_sum(dx, seed_off, n) / n  # undefined DX count as 0 in the seed
    # does DX go undefined anywhere after the seed, inside the data? (rare: a flat market)
    lo = (sp.s0 if sp.s0 is not None else int(sp.start.min())) + seed_off + 1
    bad = tot[:, lo:] == 0
    if bool(bad.any()):
        t = torch.arange(T, device=h0.device)
        update = (tot != 0) & (t[None, :] > (sp.start + seed_off)[:, None])
        adx_ = _held_scan(dx, sp, (n - 1) / n, 1.0 / n, seed_off, seed_val, update)
    else:
        adx_ = _seeded_scan(dx, sp, (n - 1) / n, 1.0 / n, seed_off, seed_val)
    return pdi, mdi, adx_


def _held_scan(x0: Tensor, sp: _Span, a: float, b: float, seed_off: int, seed_val: Tensor, update: Tensor) -> Tensor:
    """Like _seeded_scan, but bars where ``update`` is False keep the previous value.

    The seed bar and the updating bars are compacted to the left (a scatter to their running
    count), scanned with the constant coefficient, and spread back with a gather of the last
    kept bar at or before each bar (a forward fill).
    """
    S, T = x0.shape
    t = torch.arange(T, device=x0.device)
    keep = update | (t[None, :] == (sp.start + seed_off)[:, None])  # [S, T]
    pos = keep.cumsum(1) - 1  # [S, T]: compacted index of the last kept bar at or before t
    u = x0 * b * keep
    sp.put(u, seed_off, seed_val.to(u.dtype))
    packed = torch.zeros(S, T + 1, dtype=u.dtype, device=u.device)  # column T: dump slot
    packed.scatter_(1, torch.where(keep, pos, torch.full_like(pos, T)), u)
    y = linear_scan(packed[:, :T], a)  # [S, T] compacted
    return y.gather(1, pos.clamp(min=0))


@_rowwise
def dmi(high: Tensor, low: Tensor, close: Tensor, n: int = 14) -> tuple[Tensor, Tensor, Tensor]:
    """(+DI, -DI, ADX) as TA-Lib PLUS_DI, MINUS_DI (first at start + n) and ADX (first at
    start + 2n - 1), sharing one computation of the Wilder sums."""
    _check(high, low, close)
    if n < 2:
        raise ValueError(f"dmi/adx need n >= 2; got {n}")
    sp = _Span.of(high + low + close)
    pdi, mdi, adx_ = _dmi_k(_clean(high), _clean(low), _clean(close), sp, n)
    return sp.mask(pdi, n), sp.mask(mdi, n), sp.mask(adx_, 2 * n - 1)


def plus_di(high: Tensor, low: Tensor, close: Tensor, n: int = 14) -> Tensor:
    """+DI (TA-Lib PLUS_DI): 100 * Wilder(+DM) / Wilder(TR); first value at start + n."""
    return dmi(high, low, close, n)[0]


def minus_di(high: Tensor, low: Tensor, close: Tensor, n: int = 14) -> Tensor:
    """-DI (TA-Lib MINUS_DI): 100 * Wilder(-DM) / Wilder(TR); first value at start + n."""
    return dmi(high, low, close, n)[1]


def adx(high: Tensor, low: Tensor, close: Tensor, n: int = 14) -> Tensor:
    """Average directional index (TA-Lib ADX): first value at bar start + 2n - 1."""
    return dmi(high, low, close, n)[2]


def _cci_k(tp: Tensor, n: int) -> Tensor:
    """Unmasked CCI of a finite typical-price tensor.

    The mean absolute deviation needs each window's own mean, so it runs on an ``unfold``ed
    view [s, T-n+1, n] of a few symbols at a time: on CPU 16 (16 x 5,000 x 20 float64 =
    12.8 MB of temporaries, cache-friendly; the whole [500, 5000, 20] would be 400 MB), on
    CUDA as many as fit in ~2**24 values.
    """
    S, T = tp.shape
    out = torch.zeros_like(tp)
    if T < n:
        return out
    sub = max(1, (1 << 24) // (T * n)) if tp.is_cuda else 16
    for s in range(0, S, sub):
        w = tp[s : s + sub].unfold(1, n, 1)  # [s, T-n+1, n] view, no copy
        avg = w.sum(-1, keepdim=True).div_(n)  # [s, T-n+1, 1] window mean
        mad = (w - avg).abs_().sum(-1).div_(n)  # [s, T-n+1] mean absolute deviation
        avg = avg.squeeze(-1)
        last = tp[s : s + sub, n - 1 :]  # [s, T-n+1] the window's last (current) bar
        num = last - avg
        val = (num / mad).div_(0.015)
        # flat window: TA-Lib reports 0 (its numerator test is scaled to the operands; here
        # the numerator of a flat window is rounding noise of the mean)
        val.mul_(num.abs() > 1e-14 * (last.abs() + avg.abs()))
        out[s : s + sub, n - 1 :] = val.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
    return out


@_rowwise
def cci(high: Tensor, low: Tensor, close: Tensor, n: int = 14) -> Tensor:
    """Commodity channel index (TA-Lib CCI): (tp - mean(tp)) / (0.015 * mean|tp - mean(tp)|)
    over the trailing n bars, tp = (h+l+c)/3; 0 for a flat window; first value at start+n-1."""
    _check(high, low, close)
    tp = (high + low + close) / 3.0
    sp = _Span.of(tp)
    return sp.mask(_cci_k(_clean(tp), n), n - 1)


def _stoch_k(h0, l0, c0, sp: _Span, fastk: int, slowk: int, slowd: int):
    hh = _extreme_k(h0, fastk, torch.maximum)
    ll = _extreme_k(l0, fastk, torch.minimum)
    rng = hh.sub_(ll).div_(100.0)
    # TA-Lib: fast %K = (c - LL) / ((HH - LL) / 100), 0 when HH == LL
    fk = (c0 - ll).div_(rng).nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
    sk = _sma_k(fk, slowk)
    sd = _sma_k(sk, slowd)
    return sk, sd


@_rowwise
def stoch(
    high: Tensor,
    low: Tensor,
    close: Tensor,
    fastk: int = 5,
    slowk: int = 3,
    slowd: int = 3,
) -> tuple[Tensor, Tensor]:
    """Slow stochastic (TA-Lib STOCH, SMA smoothing): (slow %K, slow %D).

    fast %K = 100 (c - LL) / (HH - LL) over fastk bars (0 when HH == LL); slow %K =
    SMA(fast %K, slowk); slow %D = SMA(slow %K, slowd). TA-Lib starts BOTH at
    start + (fastk-1) + (slowk-1) + (slowd-1).
    """
    _check(high, low, close)
    sp = _Span.of(high + low + close)
    sk, sd = _stoch_k(_clean(high), _clean(low), _clean(close), sp, fastk, slowk, slowd)
    lb = fastk - 1 + slowk - 1 + slowd - 1
    return sp.mask(sk, lb), sp.mask(sd, lb)


# ----------------------------------------------------------------------------------------------
# WaveTrend (LazyBear) and crosses
# ----------------------------------------------------------------------------------------------


def wavetrend_lookbacks(channel: int = 10, average: int = 21, signal: int = 4) -> tuple[int, int]:
    """Warm-up bars of (wt1, wt2)."""
    wt1 = 2 * (channel - 1) + average - 1
    return wt1, wt1 + signal - 1


def _wavetrend_k(ap0: Tensor, sp: _Span, channel: int, average: int, signal: int):
    esa = _ema_k(ap0, sp, channel)  # valid from start + channel-1
    dev = (ap0 - esa).abs_()
    d = _ema_k(dev, sp.after(channel - 1), channel)  # valid from start + 2(channel-1)
    # ci = (ap - esa) / (0.015 d); 0 where d == 0 (a flat market; also the pre-seed zeros)
    ci = (ap0 - esa).div_(d).div_(0.015).nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
    wt1 = _ema_k(ci, sp.after(2 * (channel - 1)), average)
    wt2 = _sma_k(wt1, signal)
    return wt1, wt2


@_rowwise
def wavetrend(
    high: Tensor | None,
    low: Tensor | None,
    close: Tensor,
    channel: int = 10,
    average: int = 21,
    signal: int = 4,
) -> tuple[Tensor, Tensor]:
    """LazyBear's WaveTrend oscillator: (wt1, wt2).

    ap = hlc3 (close when high/low are None); esa = EMA(ap, channel); d = EMA(|ap - esa|,
    channel); ci = (ap - esa) / (0.015 d), 0 where d == 0; wt1 = EMA(ci, average);
    wt2 = SMA(wt1, signal). Every EMA is TA-Lib style (SMA seed) and starts where its input
    becomes valid: wt1 is first valid at start + 2(channel-1) + average-1, wt2 signal-1 later.
    """
    if (high is None) != (low is None):
        raise ValueError("wavetrend needs both high and low, or neither")
    _check(high, low, close)
    ap = close if high is None else (high + low + close) / 3.0
    sp = _Span.of(ap)
    wt1, wt2 = _wavetrend_k(_clean(ap), sp, channel, average, signal)
    lb1, lb2 = wavetrend_lookbacks(channel, average, signal)
    return sp.mask(wt1, lb1), sp.mask(wt2, lb2)


def _cross(a: Tensor, b: Tensor | float, up: bool) -> Tensor:
    diff = a - b  # [S, T]
    out = torch.empty_like(diff)
    out[:, :1] = _NAN  # no previous bar
    cur, prev = diff[:, 1:], diff[:, :-1]  # [S, T-1] views: bar t and bar t-1
    hit = ((prev <= 0) & (cur > 0)) if up else ((prev >= 0) & (cur < 0))
    torch.add(cur, prev, out=out[:, 1:])  # NaN where either bar is undefined ...
    out[:, 1:].mul_(0.0).add_(hit)  # ... else 0, plus the hit
    return out


def cross_above(a: Tensor, b: Tensor | float) -> Tensor:
    """1.0 on bars where a crosses above b (a[t-1] <= b[t-1] and a[t] > b[t]), else 0.0;
    NaN where a or b is NaN at t or t-1 (so the first bar is NaN)."""
    return _cross(a, b, up=True)


def cross_below(a: Tensor, b: Tensor | float) -> Tensor:
    """1.0 on bars where a crosses below b (a[t-1] >= b[t-1] and a[t] < b[t]), else 0.0;
    NaN where a or b is NaN at t or t-1 (so the first bar is NaN)."""
    return _cross(a, b, up=False)
