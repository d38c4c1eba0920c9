"""What queueing theory expects of a closed loop of users, to set beside every measurement.

A benchmark that only reports numbers invites the reader to guess what they should have been. This module says
it: from the request mix and the server's resources it gives the bounds no server can beat and the exact curve
of a simple model, so a measured point that sits far from them is a finding (or a bug in the harness), and one
that sits between them is explained.

**The system.** ``N`` users each send a request, wait for its answer, think for a mean ``Z`` seconds, and send
the next one (Locust's closed loop). A request of class *i* (chosen independently each time with probability
proportional to its weight) spends ``wait_i`` seconds waiting on the database and ``cpu_i`` seconds computing.
The server has three resources, each able to hold a limited number of requests at once:

* **slots** (``c``): sync workers x threads, the FastAPI ``def`` thread-pool limit, or one per event loop when
  an ``async def`` endpoint blocks. A slot is held for the request's whole service, CPU work and waits alike,
  so it is busy for ``S = mean(wait + cpu)`` per request. An event loop running ``async def`` endpoints that
  await their waits has no slot limit (``None``).
* **cpu** (``P`` cores the server can use, ``min(cores, processes)``), busy ``D_cpu = mean(cpu)`` per request.
* **database** (``p`` connections, ``None`` for no pool limit), held only during the waits: ``S_db =
  mean(wait)`` per request.

**The bounds** (asymptotic bound analysis). A resource that can hold ``k`` requests, each for ``s`` seconds on
average, completes at most ``k / s`` requests per second (utilisation law), and ``N`` users who each need at
least ``S + Z`` per cycle cannot ask for more than ``N / (S + Z)``. Hence::

    X(N) <= min(N / (S + Z), X_max),       X_max = min(c / S, P / D_cpu, p / S_db)
    R(N) >= max(S, N / X_max - Z)          (response time law, R = N / X - Z)

and the knee, where the two throughput bounds cross and requests start to queue, is ``N* = X_max (S + Z)``
(``c (S + Z) / S`` when slots bound). These use only means, so they hold whatever the distributions of think
time, waits and CPU, and collapsing the mix to its mean is exact for them: ``S`` is what an average completed
request held a slot for, because each request's class is drawn independently of the others'.

**The curve.** The bounding resource (smallest capacity) becomes a station of ``k`` servers with mean service
``s_b``; everything else in a request's life, plus the think time, is a pure delay of mean ``Z' = Z + S - s_b``.
That is the machine-repairman model M/M/k//N, whose birth-death chain is solved exactly here. What is exact
about it, and what is not:

* *Exact, given the one-station abstraction:* if the station's service is exponential with mean ``s_b`` and
  served in arrival order, or if the station shares its ``k`` servers equally among the requests present
  (processor sharing) with service of any distribution. In both cases the delay (think time and the rest of the
  request) may have any distribution with mean ``Z'``: both are product-form (BCMP / Kelly) networks, insensitive
  to the delay's distribution. Locust's uniform think time therefore needs only its mean.
* *Approximate:* (1) only one resource queues; the others are counted as fixed delay, so where two capacities
  are close the curve is optimistic. (2) Slot queues and connection pools serve in arrival order, and an event
  loop runs its ready callbacks in turn; only cores shared by threads come close to processor sharing. Where
  service is in arrival order it is the mix of classes rather than exponential, and the curve then depends on
  more than the mean, so collapsing the mix to its mean is an approximation there. Simulated waits are far
  less variable than exponential (a fixed sleep plus a little jitter), and less variable service means less
  queueing, so measured throughput should fall between this curve and the bound, and measured mean response
  time between the curve's and the response bound. That holds for a mix less variable than exponential
  (``Demand.service_scv < 1``, true of the default scenario); a mix of rare very long requests among many short
  ones is more variable, and can then measure below the curve. (3) Real servers add costs outside the model
  (HTTP parsing in the client, the network, Locust's own scheduling), which appear as extra response time.

Worked example (the default scenario, N = 500, Z = 5 s; a page waits 0.100 s and computes 0.010 s, weight 4; a
short request waits 0.010 s and computes about 0.001 s, weight 1): ``S = 0.0902 s``, ``D_cpu = 0.0082 s``. Three
sync workers finish at most ``3 / 0.0902 = 33.3`` requests/s, so 500 users, who ask for ``500 / 5.0902 = 98.2``
per second, queue (knee at 169 users). One event loop on one core can do ``1 / 0.0082 = 122`` per second, above
what the users ask, so it is not bound by the server: about 98 requests/s, slightly less on the exact curve as
its core is ~80% busy.

Everything here is pure arithmetic on the inputs; times are in seconds except where a name says ``_ms``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

Resource = Literal["slots", "cpu", "database"]
Bound = Literal["users", "slots", "cpu", "database"]

# Ties between capacities go to the first of these, so a prediction never depends on dict ordering.
RESOURCES: tuple[Resource, ...] = ("slots", "cpu", "database")


def _finite_non_negative(value: float, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be a finite number of seconds >= 0, got {value!r}")


def _whole_at_least_one(value: int, what: str) -> None:
    # bool is an int to Python; True slots would be a silent 1.
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a whole number >= 1, got {value!r}")


@dataclass(frozen=True)
class RequestClass:
    """One kind of request: how often users send it, and what it costs the server.

    ``cpu_s`` must include the framework's own overhead per request, not just the endpoint's work: it is the
    whole CPU time the server spends on the request, which is what a core's capacity is divided by.
    """

    name: str
    weight: float
    wait_s: float
    cpu_s: float

    def __post_init__(self) -> None:
        if isinstance(self.weight, bool) or not isinstance(self.weight, int | float):
            raise ValueError(f"request class {self.name!r}: weight must be a number, got {self.weight!r}")
        if not math.isfinite(self.weight) or self.weight < 0:
            raise ValueError(f"request class {self.name!r}: weight must be finite and >= 0, got {self.weight!r}")
        _finite_non_negative(self.wait_s, f"request class {self.name!r}: wait_s")
        _finite_non_negative(self.cpu_s, f"request class {self.name!r}: cpu_s")

    @property
    def service_s(self) -> float:
        """Time the request holds a slot: its waits and its CPU work, one after the other."""
        return self.wait_s + self.cpu_s


@dataclass(frozen=True)
class Demand:
    """What the users ask of the server: their mean think time and the mix of requests.

    Only the mean think time enters the model (see the module's note on insensitivity), so a uniform think time
    between ``a`` and ``b`` is given as ``(a + b) / 2``.
    """

    think_s: float
    mix: tuple[RequestClass, ...]

    def __post_init__(self) -> None:
        _finite_non_negative(self.think_s, "think_s")
        # Accept a list from the caller but store a tuple, so the frozen object really cannot change.
        object.__setattr__(self, "mix", tuple(self.mix))
        if not self.mix:
            raise ValueError("the request mix is empty: give at least one request class")
        if not all(isinstance(c, RequestClass) for c in self.mix):
            raise ValueError("the request mix must be RequestClass instances")
        if sum(c.weight for c in self.mix) <= 0:
            raise ValueError("the request mix's weights are all zero: no request would ever be sent")
        if self.service_s <= 0:
            raise ValueError("every request in the mix takes zero time: the model needs some wait or CPU time")

    def _mean(self, values: Iterable[float]) -> float:
        total = math.fsum(c.weight for c in self.mix)
        return math.fsum(c.weight * v for c, v in zip(self.mix, values, strict=True)) / total

    @property
    def service_s(self) -> float:
        """``S``: mean time a request holds a slot, weighted by how often each class is sent."""
        return self._mean(c.service_s for c in self.mix)

    @property
    def cpu_s(self) -> float:
        """``D_cpu``: mean CPU seconds per request, the demand on the cores."""
        return self._mean(c.cpu_s for c in self.mix)

    @property
    def wait_s(self) -> float:
        """``S_db``: mean seconds per request holding a database connection."""
        return self._mean(c.wait_s for c in self.mix)

    @property
    def service_scv(self) -> float:
        """Squared coefficient of variation of ``S`` across the mix (variance / mean^2; exponential is 1).

        Below 1 the mix is less variable than the exponential service the curve assumes, which is what lets a
        reader expect measurements between the curve and the bounds; it ignores the small jitter within a class.
        """
        mean = self.service_s
        second = self._mean(c.service_s**2 for c in self.mix)
        return max(0.0, second - mean**2) / mean**2


@dataclass(frozen=True)
class Server:
    """The resources a server configuration has.

    ``slots``: requests in service at once (sync workers x threads, the ``def`` thread-pool limit, or the number
    of event loops when ``async def`` endpoints block); ``None`` for event loops that await their waits.
    ``cpus``: cores the server can actually use, ``min(cores, processes)``. ``db_connections``: the connection
    pool, ``None`` for no limit (a scenario's ``capacity = 0`` must be translated, not passed).
    """

    slots: int | None
    cpus: int
    db_connections: int | None = None

    def __post_init__(self) -> None:
        if self.slots is not None:
            _whole_at_least_one(self.slots, "slots (None for no limit)")
        _whole_at_least_one(self.cpus, "cpus")
        if self.db_connections is not None:
            _whole_at_least_one(self.db_connections, "db_connections (None for no pool limit)")


@dataclass(frozen=True)
class Station:
    """The bounding resource seen as ``servers`` parallel servers each taking ``service_s`` per request."""

    resource: Resource
    servers: int
    service_s: float

    @property
    def capacity_rps(self) -> float:
        return self.servers / self.service_s


@dataclass(frozen=True)
class System:
    """A demand on a server: everything the model needs except the number of users."""

    demand: Demand
    server: Server
    stations: tuple[Station, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        d, s = self.demand, self.server
        candidates: list[tuple[Resource, int | None, float]] = [
            ("slots", s.slots, d.service_s),
            ("cpu", s.cpus, d.cpu_s),
            ("database", s.db_connections, d.wait_s),
        ]
        # A resource no request uses, or one with no limit, can never bound the server.
        stations = tuple(Station(r, k, t) for r, k, t in candidates if k is not None and t > 0)
        if not stations:
            raise ValueError(
                "nothing in this system can limit throughput (no slot or pool limit and zero CPU time): "
                "give the requests some CPU time, or the server a slot or database limit"
            )
        object.__setattr__(self, "stations", stations)

    @property
    def capacities_rps(self) -> dict[Resource, float]:
        """Most requests/s each limited resource can complete; unlimited or unused ones are absent."""
        return {st.resource: st.capacity_rps for st in self.stations}

    @property
    def bottleneck(self) -> Station:
        """The resource with the smallest capacity: where requests queue once there are enough users."""
        return min(self.stations, key=lambda st: (st.capacity_rps, RESOURCES.index(st.resource)))

    @property
    def max_rps(self) -> float:
        """``X_max``: the ceiling no number of users can push throughput past."""
        return self.bottleneck.capacity_rps

    @property
    def knee_users(self) -> float:
        """``N* = X_max (S + Z)``: below it the users, above it the server, limit throughput."""
        return self.max_rps * (self.demand.service_s + self.demand.think_s)


def repairman(users: int, servers: int, service_s: float, delay_s: float) -> tuple[float, float]:
    """Solve the M/M/k//N (machine-repairman) chain exactly: (throughput per s, mean time at the station in s).

    ``users`` circulate between a pure delay of mean ``delay_s`` and a station of ``servers`` servers with
    exponential service of mean ``service_s``. With ``n`` at the station, arrivals come at ``(N - n) / delay_s``
    and completions at ``min(n, k) / service_s``; the stationary distribution is computed in logarithms because
    its unnormalised terms overflow a float long before N = 5000. The time at the station comes from Little's
    law on the station alone, not from ``N / X - Z``, which would subtract two nearly equal numbers when the
    think time dwarfs the service.
    """
    _whole_at_least_one(users, "users")
    _whole_at_least_one(servers, "servers")
    if not (math.isfinite(service_s) and service_s > 0):
        raise ValueError(f"service_s must be a finite number of seconds > 0, got {service_s!r}")
    _finite_non_negative(delay_s, "delay_s")
    if delay_s == 0:
        # No delay: every user is always at the station, the chain has a single state.
        return min(users, servers) / service_s, users * service_s / min(users, servers)
    log_ratio = math.log(service_s) - math.log(delay_s)
    # log_p[n] = log of pi(n) / pi(0) = sum over i < n of log(arrival rate at i / completion rate at i + 1).
    log_p = [0.0]
    for n in range(1, users + 1):
        log_p.append(log_p[-1] + math.log(users - n + 1) - math.log(min(n, servers)) + log_ratio)
    top = max(log_p)
    weights = [math.exp(v - top) for v in log_p]
    total = math.fsum(weights)
    throughput = math.fsum(w * min(n, servers) for n, w in enumerate(weights)) / total / service_s
    at_station = math.fsum(w * n for n, w in enumerate(weights)) / total
    return throughput, at_station / throughput


@dataclass(frozen=True)
class Prediction:
    """What the model expects at one number of users. Rates in requests/s, times in ms.

    ``bound_by`` is ``"users"`` below the knee (the users' own pace bounds throughput, not the server) and
    the bottleneck's name above it. ``utilisation`` is the exact curve's busy fraction of the bottleneck,
    which says how close to queueing the server is even below the knee.
    """

    users: int
    offered_rps: float
    throughput_bound_rps: float
    response_bound_ms: float
    model_rps: float
    model_mean_ms: float
    knee_users: float
    bound_by: Bound
    bottleneck: Resource
    utilisation: float
    capacities_rps: dict[Resource, float]


def predict(system: System, users: int) -> Prediction:
    """Bounds and the exact one-station curve for ``users`` users (see the module docstring for which is which)."""
    _whole_at_least_one(users, "users")
    demand = system.demand
    service, think = demand.service_s, demand.think_s
    station = system.bottleneck
    offered = users / (service + think)
    x_max = station.capacity_rps
    # The rest of a request's life, outside the bottleneck, joins the think time as pure delay.
    delay = max(0.0, think + service - station.service_s)
    model_rps, at_station_s = repairman(users, station.servers, station.service_s, delay)
    response_s = at_station_s + (service - station.service_s)
    return Prediction(
        users=users,
        offered_rps=offered,
        throughput_bound_rps=min(offered, x_max),
        response_bound_ms=max(service, users / x_max - think) * 1000,
        model_rps=model_rps,
        model_mean_ms=response_s * 1000,
        knee_users=system.knee_users,
        # Decided on the knee itself, so "below the knee" means one thing everywhere (offered < x_max is the same
        # inequality, but rounds differently at the knee: 3.0000000000000004 against 3).
        bound_by="users" if users < system.knee_users else station.resource,
        bottleneck=station.resource,
        utilisation=model_rps / x_max,
        capacities_rps=system.capacities_rps,
    )


def curve(system: System, users: Iterable[int]) -> list[Prediction]:
    """One prediction per measured level, in the order given, to put beside a run's table or chart."""
    return [predict(system, n) for n in users]


def dense_users(low: int, high: int, points: int = 60, knee: float | None = None) -> list[int]:
    """Whole user counts from ``low`` to ``high``, evenly spaced on a log axis (the charts' x axis).

    The integers on either side of ``knee`` are added when it falls inside the range, so the bounds' corner is
    drawn where it is rather than wherever the spacing happens to land.
    """
    _whole_at_least_one(low, "low")
    _whole_at_least_one(high, "high")
    if high < low:
        raise ValueError(f"high ({high}) must be >= low ({low})")
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise ValueError(f"points must be a whole number >= 2, got {points!r}")
    ratio = high / low
    chosen = {round(low * ratio ** (i / (points - 1))) for i in range(points)} | {low, high}
    if knee is not None and math.isfinite(knee) and low <= knee <= high:
        chosen |= {math.floor(knee), math.ceil(knee)}
    return sorted(n for n in chosen if low <= n <= high)


def dense_curve(system: System, low: int, high: int, points: int = 60) -> list[Prediction]:
    """Predictions close enough together to draw the model and bounds as lines between the measured levels."""
    return curve(system, dense_users(low, high, points, knee=system.knee_users))
