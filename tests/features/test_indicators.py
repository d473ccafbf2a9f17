"""Parity of the batched torch indicators with TA-Lib (default settings), on real embedded
data and on ragged synthetic batches (NaN right-padding), plus the scan and helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trendfactory.features import indicators as ind

talib = pytest.importorskip("talib")

RTOL = 1e-6


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------


def _ohlc(df, names=("High", "Low", "Close")):
    return tuple(df[n].to_numpy(dtype=np.float64, copy=True) for n in names)


@pytest.fixture(scope="module")
def sp500():
    arch_data = pytest.importorskip("arch.data.sp500")
    return _ohlc(arch_data.load())


@pytest.fixture(scope="module")
def msft():
    datasets = pytest.importorskip("pmdarima.datasets")
    return _ohlc(datasets.load_msft())


@pytest.fixture(scope="module")
def sp500_closes():
    """skfolio's 20 large caps, close only: [20, T] numpy."""
    datasets = pytest.importorskip("skfolio.datasets")
    prices = datasets.load_sp500_dataset()
    return prices.to_numpy(dtype=np.float64).T.copy()


def synthetic_ohlcv(lengths, seed=0):
    """Ragged seeded OHLCV: list of (h, l, c, v) numpy series with the given lengths."""
    rng = np.random.default_rng(seed)
    out = []
    for n in lengths:
        c = rng.uniform(5, 500) * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
        o = c * np.exp(rng.normal(0, 0.005, n))
        h = np.maximum(o, c) * np.exp(np.abs(rng.normal(0, 0.01, n)))
        l = np.minimum(o, c) * np.exp(-np.abs(rng.normal(0, 0.01, n)))
        v = np.exp(rng.normal(12, 1, n)).round()
        out.append((h, l, c, v))
    return out


def batch(series_list):
    """Left-aligned, NaN-padded [S, T] float64 tensor of 1-d numpy series."""
    T = max(len(s) for s in series_list)
    out = np.full((len(series_list), T), np.nan)
    for i, s in enumerate(series_list):
        out[i, : len(s)] = s
    return torch.from_numpy(out)


def assert_talib(ours: torch.Tensor | np.ndarray, ref: np.ndarray, scale: float | None = None):
    """Same NaN positions (TA-Lib's warm-up, plus our padding beyond len(ref)) and values
    within rtol=1e-6; atol is 1e-9 of the series' typical magnitude (for zero crossings)."""
    ours = ours.detach().cpu().numpy() if isinstance(ours, torch.Tensor) else ours
    n = len(ref)
    assert np.isnan(ours[n:]).all(), "padding must stay NaN"
    ours = ours[:n]
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref), err_msg="warm-up NaN positions differ")
    ok = ~np.isnan(ref)
    if scale is None:
        scale = float(np.median(np.abs(ref[ok]))) if ok.any() else 1.0
    np.testing.assert_allclose(ours[ok], ref[ok], rtol=RTOL, atol=1e-9 * max(scale, 1e-12))


# (name, torch fn on tensors (h, l, c), talib fn on numpy (h, l, c)) -- TA-Lib defaults apart
# from the periods the stock features use
HLC_CASES = [
    ("sma", lambda h, l, c: ind.sma(c, 20), lambda h, l, c: talib.SMA(c, 20)),
    ("sma200", lambda h, l, c: ind.sma(c, 200), lambda h, l, c: talib.SMA(c, 200)),
    ("ema", lambda h, l, c: ind.ema(c, 12), lambda h, l, c: talib.EMA(c, 12)),
    ("stddev", lambda h, l, c: ind.stddev(c, 20), lambda h, l, c: talib.STDDEV(c, 20)),
    ("rsi", lambda h, l, c: ind.rsi(c, 14), lambda h, l, c: talib.RSI(c, 14)),
    ("macd", lambda h, l, c: ind.macd(c)[0], lambda h, l, c: talib.MACD(c)[0]),
    ("macd_signal", lambda h, l, c: ind.macd(c)[1], lambda h, l, c: talib.MACD(c)[1]),
    ("macd_hist", lambda h, l, c: ind.macd(c)[2], lambda h, l, c: talib.MACD(c)[2]),
    ("bb_upper", lambda h, l, c: ind.bbands(c, 20)[0], lambda h, l, c: talib.BBANDS(c, 20)[0]),
    ("bb_middle", lambda h, l, c: ind.bbands(c, 20)[1], lambda h, l, c: talib.BBANDS(c, 20)[1]),
    ("bb_lower", lambda h, l, c: ind.bbands(c, 20, 1.5, 2.5)[2], lambda h, l, c: talib.BBANDS(c, 20, 1.5, 2.5)[2]),
    ("mean_std_mean", lambda h, l, c: ind.rolling_mean_std(c, (5, 60))[2], lambda h, l, c: talib.SMA(c, 60)),
    ("mean_std_std", lambda h, l, c: ind.rolling_mean_std(c, (5, 60))[1], lambda h, l, c: talib.STDDEV(c, 5)),
    ("max", lambda h, l, c: ind.rolling_max(h, 14), lambda h, l, c: talib.MAX(h, 14)),
    ("min", lambda h, l, c: ind.rolling_min(l, 14), lambda h, l, c: talib.MIN(l, 14)),
    ("sum", lambda h, l, c: ind.rolling_sum(c, 10), lambda h, l, c: talib.SUM(c, 10)),
    ("trange", lambda h, l, c: ind.trange(h, l, c), lambda h, l, c: talib.TRANGE(h, l, c)),
    ("atr", lambda h, l, c: ind.atr(h, l, c, 14), lambda h, l, c: talib.ATR(h, l, c, 14)),
    ("plus_di", lambda h, l, c: ind.plus_di(h, l, c, 14), lambda h, l, c: talib.PLUS_DI(h, l, c, 14)),
    ("minus_di", lambda h, l, c: ind.minus_di(h, l, c, 14), lambda h, l, c: talib.MINUS_DI(h, l, c, 14)),
    ("adx", lambda h, l, c: ind.adx(h, l, c, 14), lambda h, l, c: talib.ADX(h, l, c, 14)),
    ("adx7", lambda h, l, c: ind.adx(h, l, c, 7), lambda h, l, c: talib.ADX(h, l, c, 7)),
    ("cci", lambda h, l, c: ind.cci(h, l, c, 20), lambda h, l, c: talib.CCI(h, l, c, 20)),
    (
        "stoch_k",
        lambda h, l, c: ind.stoch(h, l, c, 14, 3, 3)[0],
        lambda h, l, c: talib.STOCH(h, l, c, 14, 3, 0, 3, 0)[0],
    ),
    (
        "stoch_d",
        lambda h, l, c: ind.stoch(h, l, c, 14, 3, 3)[1],
        lambda h, l, c: talib.STOCH(h, l, c, 14, 3, 0, 3, 0)[1],
    ),
    (
        "stoch_default",
        lambda h, l, c: ind.stoch(h, l, c)[1],
        lambda h, l, c: talib.STOCH(h, l, c)[1],
    ),
]
CLOSE_ONLY = {"sma", "sma200", "ema", "stddev", "rsi", "macd", "macd_signal", "macd_hist", "bb_upper", "bb_middle", "bb_lower", "sum", "mean_std_mean", "mean_std_std"}


def talib_wavetrend(h, l, c, channel=10, average=21, signal=4):
    """LazyBear WaveTrend from chained TA-Lib calls (TA-Lib skips leading NaN)."""
    ap = c if h is None else (h + l + c) / 3.0
    esa = talib.EMA(ap, channel)
    d = talib.EMA(np.abs(ap - esa), channel)
    with np.errstate(invalid="ignore", divide="ignore"):
        wt1 = talib.EMA((ap - esa) / (0.015 * d), average)
    return wt1, talib.SMA(wt1, signal)


# ----------------------------------------------------------------------------------------------
# real data
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,ours,ref", HLC_CASES, ids=[c[0] for c in HLC_CASES])
@pytest.mark.parametrize("dataset", ["sp500", "msft"])
def test_parity_real_ohlc(dataset, name, ours, ref, request):
    h, l, c = request.getfixturevalue(dataset)
    H, L, C = (torch.from_numpy(v)[None] for v in (h, l, c))  # [1, T]
    assert_talib(ours(H, L, C)[0], ref(h, l, c))


@pytest.mark.parametrize("name,ours,ref", [c for c in HLC_CASES if c[0] in CLOSE_ONLY], ids=sorted(CLOSE_ONLY, key=[c[0] for c in HLC_CASES].index))
def test_parity_close_only_batch(sp500_closes, name, ours, ref):
    """skfolio's 20 stocks as one [20, T] batch, each row cut to a different length (left
    aligned, NaN padded) -- padding must not leak into any row's values."""
    rng = np.random.default_rng(1)
    rows = [s[rng.integers(0, 3000) :] for s in sp500_closes]  # different starts -> lengths
    C = batch(rows)
    out = ours(None, None, C)
    assert out.shape == C.shape
    for i, s in enumerate(rows):
        assert_talib(out[i], ref(None, None, s))


@pytest.mark.parametrize("dataset", ["sp500", "msft"])
def test_wavetrend_real(dataset, request):
    h, l, c = request.getfixturevalue(dataset)
    wt1, wt2 = ind.wavetrend(*(torch.from_numpy(v)[None] for v in (h, l, c)))
    r1, r2 = talib_wavetrend(h, l, c)
    assert_talib(wt1[0], r1, scale=50.0)
    assert_talib(wt2[0], r2, scale=50.0)
    lb1, lb2 = ind.wavetrend_lookbacks()
    assert int(torch.isnan(wt1[0]).sum()) == lb1 and int(torch.isnan(wt2[0]).sum()) == lb2


def test_wavetrend_close_only(sp500_closes):
    C = torch.from_numpy(sp500_closes[:5])
    wt1, wt2 = ind.wavetrend(None, None, C)
    for i in range(5):
        r1, r2 = talib_wavetrend(None, None, sp500_closes[i])
        assert_talib(wt1[i], r1, scale=50.0)
        assert_talib(wt2[i], r2, scale=50.0)


# ----------------------------------------------------------------------------------------------
# synthetic ragged batches
# ----------------------------------------------------------------------------------------------

LENGTHS = [700, 64, 1, 30, 256, 699, 27, 28]  # includes series shorter than the warm-ups


@pytest.fixture(scope="module")
def ragged():
    series = synthetic_ohlcv(LENGTHS, seed=7)
    H, L, C, V = (batch([s[k] for s in series]) for k in range(4))
    return series, (H, L, C, V)


@pytest.mark.parametrize("name,ours,ref", HLC_CASES, ids=[c[0] for c in HLC_CASES])
def test_parity_synthetic_ragged(ragged, name, ours, ref):
    series, (H, L, C, _) = ragged
    out = ours(H, L, C)
    assert out.shape == C.shape and out.dtype == torch.float64
    for i, (h, l, c, _) in enumerate(series):
        assert_talib(out[i], ref(h, l, c))


def test_wavetrend_synthetic_ragged(ragged):
    series, (H, L, C, _) = ragged
    wt1, wt2 = ind.wavetrend(H, L, C)
    for i, (h, l, c, _) in enumerate(series):
        r1, r2 = talib_wavetrend(h, l, c)
        assert_talib(wt1[i], r1, scale=50.0)
        assert_talib(wt2[i], r2, scale=50.0)


def test_row_chunking_matches_single_batch(ragged, monkeypatch):
    """The public functions split big batches into symbol chunks; results agree (to rounding:
    BLAS may block a matmul differently for a different row count)."""
    _, (H, L, C, _) = ragged
    whole = ind.dmi(H, L, C)
    monkeypatch.setattr(ind, "CHUNK_ELEMENTS", 2 * H.shape[1])  # 2 rows per chunk
    chunked = ind.dmi(H, L, C)
    for a, b in zip(whole, chunked):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-13, equal_nan=True)


def test_chained_input_with_ragged_nan_prefix():
    """Inputs with a different NaN prefix per row (a chained indicator) start their own warm-up
    where each row becomes valid, as TA-Lib does."""
    rng = np.random.default_rng(3)
    rows = []
    for k, n in [(0, 300), (5, 300), (40, 200), (13, 260)]:
        s = 100 + np.cumsum(rng.normal(0, 1, n))
        s[:k] = np.nan
        rows.append(s)
    X = batch(rows)
    for ours, ref in [
        (ind.ema(X, 10), lambda s: talib.EMA(s, 10)),
        (ind.sma(X, 7), lambda s: talib.SMA(s, 7)),
        (ind.rsi(X, 14), lambda s: talib.RSI(s, 14)),
        (ind.stddev(X, 9), lambda s: talib.STDDEV(s, 9)),
        (ind.macd(X)[1], lambda s: talib.MACD(s)[1]),
        (ind.rolling_max(X, 5), lambda s: talib.MAX(s, 5)),
    ]:
        for i, s in enumerate(rows):
            assert_talib(ours[i], ref(s))


@pytest.mark.parametrize("flat", [slice(150, 200), slice(0, 60)], ids=["middle", "start"])
def test_flat_stretches(flat, monkeypatch):
    """Flat bars (no range, no movement): TA-Lib's zero guards. Flat from the first bar, the
    Wilder DM/TR sums are exactly 0, DX is undefined and TA-Lib's ADX holds its value."""
    ((h, l, c, _),) = synthetic_ohlcv([400], seed=11)
    h, l, c = h.copy(), l.copy(), c.copy()
    level = c[flat.start - 1] if flat.start else c[flat.stop]
    h[flat] = l[flat] = c[flat] = level
    calls = []
    real = ind._held_scan
    monkeypatch.setattr(ind, "_held_scan", lambda *a, **k: calls.append(1) or real(*a, **k))
    H, L, C = (torch.from_numpy(v)[None] for v in (h, l, c))
    assert_talib(ind.adx(H, L, C)[0], talib.ADX(h, l, c), scale=20.0)
    assert bool(calls) == (flat.start == 0)  # the hold path ran exactly when needed
    assert_talib(ind.plus_di(H, L, C)[0], talib.PLUS_DI(h, l, c), scale=20.0)
    assert_talib(ind.minus_di(H, L, C)[0], talib.MINUS_DI(h, l, c), scale=20.0)
    assert_talib(ind.cci(H, L, C)[0], talib.CCI(h, l, c), scale=100.0)
    assert_talib(ind.rsi(C)[0], talib.RSI(c), scale=50.0)
    assert_talib(ind.stddev(C, 20)[0], talib.STDDEV(c, 20), scale=float(np.median(c)) * 0.01)
    assert_talib(ind.stoch(H, L, C, 14, 3, 3)[0][0], talib.STOCH(h, l, c, 14, 3, 0, 3, 0)[0], scale=50.0)
    wt1, wt2 = ind.wavetrend(H, L, C)
    r1, r2 = talib_wavetrend(h, l, c)
    if flat.start == 0:  # TA-Lib divides 0/0 in ci -> NaN for ever; ours defines ci = 0 there
        assert not torch.isnan(wt2[0, 60:]).any()
    else:
        assert_talib(wt2[0], r2, scale=50.0)


def test_float32_close_to_float64(ragged):
    _, (H, L, C, _) = ragged
    for fn in (lambda h, l, c: ind.rsi(c), lambda h, l, c: ind.adx(h, l, c), lambda h, l, c: ind.macd(c)[0] / c, lambda h, l, c: ind.wavetrend(h, l, c)[1]):
        a = fn(H, L, C)
        b = fn(H.float(), L.float(), C.float())
        assert b.dtype == torch.float32
        torch.testing.assert_close(b.double(), a, rtol=1e-3, atol=1e-3, equal_nan=True)


# ----------------------------------------------------------------------------------------------
# building blocks
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("T", [1, 5, 31, 32, 33, 1000, 1500])
@pytest.mark.parametrize("a", [0.0, 0.5, 13 / 14, 0.999])
def test_linear_scan_matches_loop(T, a):
    u = torch.randn(3, T, dtype=torch.float64, generator=torch.Generator().manual_seed(T))
    ref = torch.empty_like(u)
    y = torch.zeros(3, dtype=torch.float64)
    for t in range(T):
        y = a * y + u[:, t]
        ref[:, t] = y
    torch.testing.assert_close(ind.linear_scan(u, a), ref, rtol=1e-12, atol=1e-12)


def test_linear_scan_is_causal():
    u = torch.randn(2, 200, dtype=torch.float64)
    v = u.clone()
    v[:, 120:] = torch.randn(2, 80, dtype=torch.float64) * 1e6
    a, b = ind.linear_scan(u, 0.9), ind.linear_scan(v, 0.9)
    assert torch.equal(a[:, :120], b[:, :120])


def test_crosses():
    a = torch.tensor([[float("nan"), 1.0, 2.0, 3.0, 2.0, 1.0, 2.0, 2.0]])
    b = torch.tensor([[2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.5]])
    up = ind.cross_above(a, b)[0]
    dn = ind.cross_below(a, b)[0]
    # bar 0 undefined; bar 1 has no defined previous bar
    assert torch.isnan(up[:2]).all() and torch.isnan(dn[:2]).all()
    assert up[2:].tolist() == [0.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    assert dn[2:].tolist() == [0.0, 0.0, 0.0, 1.0, 0.0, 1.0]
    assert ind.cross_above(a, 1.5)[0, 2:].tolist() == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def test_shapes_and_errors():
    with pytest.raises(ValueError, match=r"\[S, T\]"):
        ind.sma(torch.zeros(5), 3)
    with pytest.raises(ValueError, match="share one shape"):
        ind.atr(torch.zeros(2, 5), torch.zeros(2, 5), torch.zeros(3, 5))
    empty = ind.rsi(torch.zeros(0, 10, dtype=torch.float64))
    assert empty.shape == (0, 10)
    no_bars = ind.dmi(*(torch.zeros(3, 0, dtype=torch.float64),) * 3)
    assert all(t.shape == (3, 0) for t in no_bars)
    assert ind.rolling_mean_std(torch.zeros(2, 0, dtype=torch.float64), (5, 10))[3].shape == (2, 0)
    short = ind.adx(*(torch.ones(2, 5, dtype=torch.float64),) * 3)
    assert torch.isnan(short).all()
