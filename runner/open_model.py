"""What queueing theory expects of open arrivals, to set beside the latency measured against an offered rate.

The closed loop of :mod:`runner.model` slows its users down when the server queues: a user waiting for an answer
sends nothing, so the load falls just when the server is worst. An open workload does not: requests arrive as a
Poisson process at ``lambda`` requests/s whatever happens to the earlier ones (wrk2's and k6's arrival-rate modes),
and latency is timed from when each request was due. This module says what a simple model expects of that, so a
latency-against-rate chart shows where the measured curve should bend and how close to the model it sits.

**The station.** The same one-station abstraction as :mod:`runner.model`, reused through :class:`model.System`:
the bounding resource (smallest capacity: slots, CPU cores, or database connections) is a station of ``k``
servers, fed in arrival order. What a request of class *i* holds it for, ``b_i``, depends on the resource: a slot
is held for the whole request (``wait_i + cpu_i``), a core for its CPU work (``cpu_i``), a connection for its
waits (``wait_i``); the rest of the request, ``r_i = wait_i + cpu_i - b_i``, is spent outside the station and
never queues. An event loop with no slot limit is bound by its cores, as in the closed model. Unlike the closed
model's curve, the classes keep their own times here: the simulated waits are a fixed sleep per class, so the mix
is a few near-constant service times, and a percentile depends on exactly that (an exponential service of the
same mean made an idle sync server's p99 415 ms where a page takes 110 ms).

**The queue: M/G/k, approximated.** Fed at ``lambda`` the station is stable while ``rho = lambda E[b] / k < 1``
(the utilisation law, exact whatever the distributions). Its queueing wait ``W`` is taken as: zero with
probability ``1 - C``, where ``C`` is Erlang C for ``k`` servers and offered load ``a = lambda E[b]``; otherwise
exponential with mean ``theta = (1 + cs2) / 2 / (k mu - lambda)``, ``mu = 1 / E[b]``, ``cs2`` the squared
coefficient of variation of ``b`` over the mix (Allen-Cunneen's scaling of the M/M/k wait, Kingman's
heavy-traffic factor). A class-*i* request then takes ``W + b_i + r_i``, so over the mix::

    P(R > t) = sum_i w_i P(W > t - b_i - r_i),   P(W > x) = 1 for x < 0,  C exp(-x / theta) for x >= 0
    E[R]     = sum_i w_i (b_i + r_i) + C theta

Percentiles are the generalised inverse of that survival function: the ``p`` quantile is the *smallest* ``t`` with
``P(R > t) <= 1 - p`` (numpy's ``inverted_cdf``, the harness's own convention for measured percentiles). Between
two class totals the survival is a constant plus a sum of exponentials with one common rate, so each piece is
inverted in closed form; at a class total it drops by that class's ``w_i (1 - C)``, and a quantile may sit on
the drop. An idle server (``C = 0``) has a step function: its p99 is the p99 of the class totals, a page's 110 ms
in the default scenario.

What is exact and what is not:

* *Exact:* the stability limit; the M/M/k wait (``cs2 = 1``: Erlang C and an exponential tail of rate
  ``k mu - lambda``); the mean wait of M/G/1 (``k = 1``: ``C = rho`` and ``C theta`` is Pollaczek-Khinchine's
  ``lambda E[b^2] / (2 (1 - rho))``); and the idle server's distribution.
* *Approximate:* (1) every other M/G/k: the chance of waiting (Erlang C is the exponential-service value, exact
  only for ``k = 1``) and the exponential shape of the wait given waiting. Against a simulated FCFS queue with the
  default mix on 3 slots at ``rho`` 0.5 to 0.9, the model's p99 was 2-4% above the simulated one, its p50 0-3%
  below and its mean within 1% (tests/test_open_model.py gives them per load). (2) The jitter of the simulated
  waits (10% of a sleep) is ignored: each class takes its mean time exactly. (3) Only one resource queues; where
  two capacities are close the model is optimistic near saturation. An event loop's cores are not a FCFS station
  either: the loop interleaves requests at every await, spreading the queueing over more of them, so its p50 can
  sit above the model and its p99 below. (4) Real servers add costs outside the model (parsing, the network, the
  load generator's scheduling), which add to measured latency, so points sit above the curves by that much.
  These err in both directions, which is why :func:`bracket` widens its estimate both ways.

At or above capacity the queue grows without bound for as long as the arrivals last: the prediction is marked
``stable=False`` and its times are ``None`` (not infinity, which JSON cannot hold and a chart cannot draw), and a
measurement there shows only how long the step ran.

Worked example (the default scenario's mix: pages of 0.100 s waits and 0.010 s CPU, weight 4; short requests of
0.010 s and 0.001 s, weight 1; ``E[b] = 0.0902 s`` on slots, ``0.0082 s`` on a core, ``cs2 = 0.193`` on either).
Three sync workers are a station of 3 slots: capacity 33.3 requests/s; idle, p50 and p99 are a page's 110 ms; at
20/s (``rho = 0.6``) an arrival waits with probability 0.36, the mean is 106 ms, p50 still 110 ms and p99 262 ms,
and a p99 target of 500 ms holds up to 27.0/s (M/M/k said 415 ms idle, 486 ms at 20/s and 20.8/s). One event loop
on one core is a single server holding each request for its CPU work, behind its waits: capacity 122 requests/s;
at 100/s (``rho = 0.82``) the mean is 112 ms and p99 224 ms; 500 ms holds to 115/s.

Times are in seconds except where a name says ``_ms``; rates in requests/s.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from scipy.optimize import brentq  # type: ignore[import-untyped]  # scipy ships no type information

from runner import model

# The percentiles every prediction carries, as (field name, probability).
PERCENTILES: tuple[tuple[str, float], ...] = (("p50_ms", 0.50), ("p95_ms", 0.95), ("p99_ms", 0.99))
P99_TAIL = 1.0 - 0.99
# How close to capacity capacity_under searches: there theta, and with it p99, is a billion service times.
_EDGE = 1e-9
_EPS = sys.float_info.epsilon


def _rate(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be a finite number of requests/s >= 0, got {value!r}")
    return float(value)


def _positive(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} must be a finite number > 0, got {value!r}")
    return float(value)


def _servers(value: int) -> int:
    # bool is an int to Python; True servers would be a silent 1.
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"servers must be a whole number >= 1, got {value!r}")
    return value


def _probability(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ValueError(f"probability must be strictly between 0 and 1, got {value!r}")
    return float(value)


def _system(value: model.System) -> model.System:
    if not isinstance(value, model.System):
        raise ValueError(f"system must be a runner.model.System, got {type(value).__name__}")
    return value


def erlang_c(servers: int, offered_load: float) -> float:
    """Probability that an arrival to an M/M/k queue must wait: Erlang C for ``k = servers``, ``a = lambda s``.

    Computed through the Erlang B recursion ``B(n) = a B(n-1) / (n + a B(n-1))``, every term of which lies in
    [0, 1], so it neither overflows nor loses precision for hundreds of servers (the textbook formula's ``a^k / k!``
    overflows a float near ``k = 170``). At or above saturation (``a >= k``) every arrival eventually waits: 1.0,
    and the caller must treat the queue as unstable.
    """
    k = _servers(servers)
    a = _rate(offered_load, "offered_load (arrival rate x mean service time)")
    if a >= k:
        return 1.0
    blocking = 1.0
    for n in range(1, k + 1):
        blocking = a * blocking / (n + a * blocking)
    return k * blocking / (k - a * (1.0 - blocking))


def _wait_shape(servers: int, service_s: float, scv: float, rate_rps: float) -> tuple[float, float]:
    """``(C, theta)`` of a stable station: the chance of waiting and the mean wait of those who wait."""
    k = _servers(servers)
    mean = _positive(service_s, "service_s (the station's mean service time)")
    if isinstance(scv, bool) or not isinstance(scv, int | float) or not math.isfinite(scv) or scv < 0:
        raise ValueError(f"scv (squared coefficient of variation of service) must be finite and >= 0, got {scv!r}")
    lam = _rate(rate_rps, "rate_rps")
    if lam * mean >= k:
        raise ValueError(f"rate_rps {lam!r} is at or above the station's capacity {k / mean!r}: no steady state")
    return erlang_c(k, lam * mean), (1.0 + scv) / 2.0 / (k / mean - lam)


def wait_survival(servers: int, service_s: float, scv: float, rate_rps: float, x_s: float) -> float:
    """``P(W > x)``: the chance that a request waits longer than ``x_s`` seconds for one of the station's
    ``servers`` (mean service ``service_s``, its squared coefficient of variation ``scv``) at ``rate_rps``.

    Allen-Cunneen's approximation of M/G/k: Erlang C times an exponential of mean ``(1 + scv) / 2 / (k mu -
    lambda)``; exact for exponential service (``scv = 1``) and, in the mean, for one server. Always 1 below zero,
    so a class's response survival is this function shifted by the class's own time.
    """
    waits, theta = _wait_shape(servers, service_s, scv, rate_rps)
    if x_s < 0:
        return 1.0
    return waits * math.exp(-x_s / theta)


@dataclass(frozen=True)
class ClassTimes:
    """One request class as the open model sees it: ``share`` of the arrivals (weights normalised to sum to 1),
    ``service_s`` holding the bottleneck (``b_i``) and ``outside_s`` spent elsewhere (``r_i``), both exact."""

    name: str
    share: float
    service_s: float
    outside_s: float

    @property
    def total_s(self) -> float:
        """The class's whole time when it does not wait: its ``wait_s + cpu_s``."""
        return self.service_s + self.outside_s


def station_classes(system: model.System) -> tuple[ClassTimes, ...]:
    """Each request class's share and its times on and off the bottleneck of ``system``.

    Classes of weight 0 are left out (they are never sent, and a zero share would only add terms of zero). Which
    part of a request holds the station follows :class:`model.System`: a slot holds all of it, a core its CPU
    work, a database connection its waits.
    """
    resource = _system(system).bottleneck.resource
    mix = [c for c in system.demand.mix if c.weight > 0]
    total = math.fsum(c.weight for c in mix)
    found = []
    for c in mix:
        held = {"slots": c.wait_s + c.cpu_s, "cpu": c.cpu_s, "database": c.wait_s}[resource]
        found.append(ClassTimes(c.name, c.weight / total, held, c.wait_s + c.cpu_s - held))
    return tuple(found)


def service_scv(classes: Sequence[ClassTimes]) -> float:
    """Squared coefficient of variation of the station's service over the mix (variance / mean^2).

    0 for a single class (every request holds the station equally long), 1 for exponential service; the default
    scenario's page-and-short mix is 0.19 on either slots or a core.
    """
    mean = math.fsum(c.share * c.service_s for c in classes)
    second = math.fsum(c.share * c.service_s**2 for c in classes)
    return max(0.0, second / mean**2 - 1.0)


@dataclass(frozen=True)
class _Mix:
    """The response-time distribution of one stable station at one rate, ready to evaluate and invert."""

    totals: tuple[float, ...]  # distinct class totals, ascending
    shares: tuple[float, ...]  # the share of arrivals with each total
    above: tuple[float, ...]  # the share with a total strictly above each
    waits: float  # C
    theta: float  # mean wait of a request that waits, seconds

    def _queued(self, j: int, t: float) -> float:
        """``sum over totals[l] <= totals[j] of share_l exp(-(t - total_l) / theta)``, for ``t >= totals[j]``:
        every exponent is <= 0, so nothing overflows however small theta is."""
        pairs = zip(self.totals[: j + 1], self.shares[: j + 1], strict=True)
        return math.fsum(w * math.exp(-(t - c) / self.theta) for c, w in pairs)

    def survival(self, t: float) -> float:
        """``P(R > t)``, right-continuous: a request of total exactly ``t`` that does not wait is not above it."""
        j = sum(1 for c in self.totals if c <= t) - 1
        if j < 0:
            return 1.0
        return self.above[j] + self.waits * self._queued(j, t)

    def quantile(self, probability: float) -> float:
        """The smallest ``t`` with ``P(R > t) <= 1 - probability``, piece by piece from the fastest class.

        On ``[totals[j], totals[j+1])`` the survival is ``above[j] + C D e^(-(t - totals[j]) / theta)`` with
        ``D = _queued(j, totals[j])``: if it is already low enough at the piece's start that start is the answer
        (the quantile sits on a class's drop); otherwise, if the piece falls to the tail before the next total,
        the answer is where, solved in closed form.
        """
        tail = 1.0 - probability
        for j, start in enumerate(self.totals):
            queued = self.waits * self._queued(j, start)
            if self.above[j] + queued <= tail:
                return start
            if queued > 0 and tail > self.above[j]:
                t = start + self.theta * math.log(queued / (tail - self.above[j]))
                if j + 1 == len(self.totals) or t < self.totals[j + 1]:
                    return t
        raise AssertionError("unreachable: above the last total the survival falls to 0")

    @property
    def mean(self) -> float:
        return math.fsum(c * w for c, w in zip(self.totals, self.shares, strict=True)) + self.waits * self.theta


def _mix(system: model.System, classes: Sequence[ClassTimes], rate: float) -> _Mix:
    station = system.bottleneck
    # E[b] is the station's own mean, so stability is decided exactly where System.max_rps puts capacity.
    waits, theta = _wait_shape(station.servers, station.service_s, service_scv(classes), rate)
    by_total: dict[float, float] = {}
    for c in classes:
        by_total[c.total_s] = by_total.get(c.total_s, 0.0) + c.share
    totals = tuple(sorted(by_total))
    shares = tuple(by_total[t] for t in totals)
    above = tuple(math.fsum(shares[j + 1 :]) for j in range(len(totals)))
    return _Mix(totals, shares, above, waits, theta)


def response_survival(system: model.System, rate_rps: float, t_s: float) -> float:
    """``P(R > t)`` over the mix: the chance an arrival at ``rate_rps`` takes longer than ``t_s`` seconds from its
    arrival to its answer (module docstring). Raises ValueError at or above capacity (no steady state)."""
    return _mix(_system(system), station_classes(system), _rate(rate_rps, "rate_rps")).survival(float(t_s))


def response_quantile(system: model.System, rate_rps: float, probability: float) -> float:
    """The ``probability`` quantile of the response time, in seconds: the smallest ``t`` with ``P(R > t) <= 1 -
    probability``. Raises ValueError at or above capacity (no steady state)."""
    p = _probability(probability)
    return _mix(_system(system), station_classes(system), _rate(rate_rps, "rate_rps")).quantile(p)


@dataclass(frozen=True)
class OpenPrediction:
    """What the model expects at one arrival rate. Rates in requests/s, times in ms from the scheduled start.

    ``utilisation`` is ``rho = lambda E[b] / k`` on the bottleneck; ``stable`` is ``rho < 1``. When unstable the
    queue grows for as long as arrivals last, so ``wait_probability`` is 1 and the times are ``None`` (no steady
    state to describe; ``None`` saves as JSON's null and is skipped by a chart). ``fixed_ms`` is the mean time a
    request spends outside the bottleneck (``sum w_i r_i``), and ``service_scv`` the variability of its service
    there that scales the wait.
    """

    rate_rps: float
    utilisation: float
    stable: bool
    wait_probability: float
    mean_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    fixed_ms: float
    bottleneck: model.Resource
    capacity_rps: float
    service_scv: float


def predict_open(system: model.System, rate_rps: float) -> OpenPrediction:
    """The M/G/k prediction for Poisson arrivals at ``rate_rps`` (see the module docstring for what is exact)."""
    classes = station_classes(_system(system))
    lam = _rate(rate_rps, "rate_rps")
    station = system.bottleneck
    utilisation = lam * station.service_s / station.servers
    stable = utilisation < 1
    mean_ms: float | None = None
    times: dict[str, float | None] = dict.fromkeys(name for name, _ in PERCENTILES)
    waits = 1.0
    if stable:
        mix = _mix(system, classes, lam)
        waits = mix.waits
        mean_ms = mix.mean * 1000
        times = {name: mix.quantile(p) * 1000 for name, p in PERCENTILES}
    return OpenPrediction(
        rate_rps=lam,
        utilisation=utilisation,
        stable=stable,
        wait_probability=waits,
        mean_ms=mean_ms,
        p50_ms=times["p50_ms"],
        p95_ms=times["p95_ms"],
        p99_ms=times["p99_ms"],
        fixed_ms=math.fsum(c.share * c.outside_s for c in classes) * 1000,
        bottleneck=station.resource,
        capacity_rps=station.capacity_rps,
        service_scv=service_scv(classes),
    )


def open_curve(system: model.System, low_rps: float, high_rps: float, points: int = 60) -> list[OpenPrediction]:
    """Predictions at ``points`` rates evenly spaced from ``low_rps`` to ``high_rps`` (the chart's linear axis).

    The curve stops at the last stable rate: rates at or above capacity have no steady state to draw, so they are
    left out rather than returned as gaps, and the list may be shorter than ``points`` (empty if ``low_rps`` is
    already at capacity). The p99 climbs without bound just below capacity; the last point shows how far.
    """
    low, high = _rate(low_rps, "low_rps"), _rate(high_rps, "high_rps")
    if high < low:
        raise ValueError(f"high_rps ({high}) must be >= low_rps ({low})")
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise ValueError(f"points must be a whole number >= 2, got {points!r}")
    rates = [low + (high - low) * i / (points - 1) for i in range(points)]
    found: list[OpenPrediction] = []
    for rate in rates:
        prediction = predict_open(system, rate)
        if not prediction.stable:
            break
        found.append(prediction)
    return found


def capacity_under(system: model.System, slo_p99_ms: float) -> float | None:
    """The highest arrival rate whose predicted p99 is at most ``slo_p99_ms``, or ``None`` if none is.

    ``None`` means the target is below the p99 of an idle server (the p99 of the class totals): no rate, however
    low, meets it in this model. Otherwise the search is not on the p99 itself, which can stay flat on a class's
    total over a range of rates and so has no single root, but on its equivalent ``P(R > target) <= 1%`` (the
    definition of the quantile): that survival is continuous in the rate and strictly increasing once anything
    waits (``C`` and ``theta`` both grow), from its idle value to 1 at capacity, so the answer is its one root,
    found with Brent's method. A target equal to a class's total is met beyond the idle rate while fewer than 1%
    of arrivals wait: with near-constant service the p99 holds at the page's own time for a while.
    """
    target = _positive(slo_p99_ms, "slo_p99_ms") / 1000
    classes = station_classes(_system(system))

    def excess(rate: float) -> float:
        return _mix(system, classes, rate).survival(target) - P99_TAIL

    if excess(0.0) > 0:
        return None
    edge = system.max_rps * (1 - _EDGE)
    if excess(edge) <= 0:
        return edge  # a target of billions of service times: everything short of capacity meets it
    # Near capacity the p99 is steep (~ p99 / (capacity - rate) per request/s), so the rate is solved to near the
    # float's own precision: a looser tolerance in the rate is a visible error in the p99 it answers for.
    root: float = brentq(excess, 0.0, edge, xtol=1e-13 * system.max_rps, rtol=4 * _EPS)
    return root


def bracket(
    system: model.System, slo_p99_ms: float, low_factor: float = 0.5, high_factor: float = 1.5
) -> tuple[float, float]:
    """The rates a measured capacity search starts from: ``low_factor`` and ``high_factor`` times the model's
    :func:`capacity_under`.

    The model is approximate in both directions (module docstring): costs outside it (HTTP parsing, the network,
    the load generator) make a real server worse than predicted, and a second resource close to the bottleneck,
    or an event loop's interleaving, moves it either way. Half and one and a half times the estimate cover errors
    of either sign of that size, and the top is meant to fail the target; the search must still widen the bracket
    when the measured p99 meets the target at its top or misses it at its bottom.

    Raises ValueError when the model expects no rate to meet the target (:func:`capacity_under` is ``None``): a
    bracket around zero says nothing, and the caller must choose its own start or a larger target.
    """
    low_f = _positive(low_factor, "low_factor")
    high_f = _positive(high_factor, "high_factor")
    if not low_f <= 1 <= high_f:
        raise ValueError(f"need low_factor <= 1 <= high_factor, got low_factor={low_f!r}, high_factor={high_f!r}")
    estimate = capacity_under(system, slo_p99_ms)
    if estimate is None:
        idle = predict_open(system, 0.0).p99_ms
        raise ValueError(
            f"slo_p99_ms {slo_p99_ms!r} is below the model's p99 of an idle server ({idle:.1f} ms): the model "
            "expects no rate to meet it, so it cannot place a bracket (choose the search's start yourself)"
        )
    return low_f * estimate, high_f * estimate
