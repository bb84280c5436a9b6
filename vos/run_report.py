"""What a benchmark run cost: frames/s, wall time, peak memory and per-sequence times, saved beside the results."""
from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .outputs import write_json


def peak_memory_mb() -> dict[str, float]:
    """Peak resident memory of this process (and CUDA's peak allocation when CUDA was used), in MiB."""
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak = {"cpu_rss": rss_kib / (1024 * 1024 if sys.platform == "darwin" else 1024)}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        peak["cuda_allocated"] = torch.cuda.max_memory_allocated() / 2**20
    return peak


@dataclass
class RunReport:
    """Per-sequence frames and seconds of the sequences this run tracked (finished ones it skipped are not timed)."""

    started: float = field(default_factory=time.perf_counter)
    sequences: dict[str, dict[str, float]] = field(default_factory=dict)

    def add(self, sequence: str, frames: int, seconds: float) -> None:
        self.sequences[sequence] = {"frames": frames, "seconds": round(seconds, 3),
                                    "frames_per_second": round(frames / seconds, 3) if seconds > 0 else None}

    def record(self) -> dict[str, Any]:
        wall = time.perf_counter() - self.started
        frames = sum(int(s["frames"]) for s in self.sequences.values())
        tracking = sum(s["seconds"] for s in self.sequences.values())
        return {"wall_seconds": round(wall, 3), "sequences_tracked": len(self.sequences), "frames": frames,
                "frames_per_second": round(frames / tracking, 3) if tracking > 0 else None,
                "peak_memory_mib": {k: round(v, 1) for k, v in peak_memory_mb().items()},
                "per_sequence": self.sequences}

    def save(self, path: Path) -> dict[str, Any]:
        record = self.record()
        write_json(path, record)
        return record
