"""A small Prometheus text-format registry: labelled counters and callback gauges."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Counter:
    name: str
    help: str
    label_names: tuple[str, ...] = ()
    values: dict[tuple[str, ...], float] = field(default_factory=dict)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple(labels[n] for n in self.label_names)
        self.values[key] = self.values.get(key, 0.0) + amount

    def samples(self) -> list[tuple[tuple[str, ...], float]]:
        return sorted(self.values.items())


@dataclass
class Gauge:
    name: str
    help: str
    read: Callable[[], float]

    label_names: tuple[str, ...] = ()

    def samples(self) -> list[tuple[tuple[str, ...], float]]:
        return [((), float(self.read()))]


class Registry:
    def __init__(self) -> None:
        self._metrics: list[Counter | Gauge] = []

    def counter(self, name: str, help: str, *label_names: str) -> Counter:
        metric = Counter(name, help, label_names)
        self._metrics.append(metric)
        return metric

    def gauge(self, name: str, help: str, read: Callable[[], float]) -> Gauge:
        metric = Gauge(name, help, read)
        self._metrics.append(metric)
        return metric

    def render(self) -> str:
        lines: list[str] = []
        for m in self._metrics:
            kind = "counter" if isinstance(m, Counter) else "gauge"
            lines += [f"# HELP {m.name} {m.help}", f"# TYPE {m.name} {kind}"]
            for key, value in m.samples():
                labels = ",".join(f'{n}="{_escape(v)}"' for n, v in zip(m.label_names, key, strict=True))
                lines.append(f"{m.name}{{{labels}}} {value:g}" if labels else f"{m.name} {value:g}")
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
