"""Play the sample week to an endpoint or into files, with its manifest and key file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tqdm import tqdm

from contracts.signing import public_key_text
from sample_data import world
from sample_data.generator import Options, Simulation
from sample_data.otlp import OtlpSender, SdkEmitter, SendSummary, write_exports
from sample_data.stories import manifest

MANIFEST = "manifest.json"
KEY_FILE = "keys.toml"


def write_key_file(sim: Simulation, path: Path) -> None:
    """The public halves of the demo's signing keys, in the key-file format (README § Signing)."""
    lines = ["# Public keys of the sample control plane (generated from the seed; demo only)."]
    for key_id, private_key in sim.keys.items():
        environments = ", ".join(f'"{e}"' for e in world.KEY_ENVIRONMENTS[key_id])
        lines += [
            "",
            f"[keys.{key_id}]",
            f'public_key = "{public_key_text(private_key)}"',
            f"environments = [{environments}]",
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def planned_records(options: Options) -> int | None:
    """Log records plus spans the week will send, for the progress bar's total.

    Found by playing the simulation once without emitting (about a second per week at scale 1);
    skipped (None) above scale 10, where it would cost too much.
    """
    if options.scale > 10:
        return None
    sim = Simulation(options)
    for _hour in sim.hours():
        pass
    return sim.tally.log_records + sim.tally.sessions


def send_week(
    options: Options,
    endpoint: str,
    out: Path | None,
    *,
    token: str | None = None,
    progress: bool = True,
) -> tuple[SendSummary, dict[str, Any]]:
    """Send the week through OTLP/HTTP; write manifest and key file under ``out`` (if given)."""
    sim = Simulation(options)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_key_file(sim, out / KEY_FILE)
    sender = OtlpSender(endpoint, token=token)
    bar = tqdm(
        total=planned_records(options) if progress else None,
        unit=" records",
        unit_scale=True,
        desc="sending",
        disable=not progress,
    )
    emitter = SdkEmitter(options.seed)
    try:
        summary = sender.send_all(emitter.exports(sim.hours()), progress=bar)
    finally:
        bar.close()
        sender.close()
    truth = manifest(sim)
    truth["counts"]["metric_points"] = emitter.metric_points
    if out is not None:
        (out / MANIFEST).write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    return summary, truth


def write_week(options: Options, out: Path) -> tuple[dict[str, int], dict[str, Any]]:
    """Write the week as OTLP/JSON request files, with manifest and key file, under ``out``."""
    sim = Simulation(options)
    out.mkdir(parents=True, exist_ok=True)
    write_key_file(sim, out / KEY_FILE)
    emitter = SdkEmitter(options.seed)
    counts = write_exports(emitter.exports(sim.hours()), out)
    truth = manifest(sim)
    truth["counts"]["metric_points"] = emitter.metric_points
    (out / MANIFEST).write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    return counts, truth
