"""A whole scenario on the vLLM backend, through ``python -m simrun`` in a fresh process: vLLM spawns its engine
and workers, so this also shows the entry point is safe to re-import as ``__main__``."""

import subprocess
import sys

from simrun.store import Store

SCENARIO = """
name: vllm-smoke
seed: 1
batch_size: 4
sampler:
  use: census
  with: {{states: [VT, WY], per_state: 2}}
simulator:
  use: vllm
  with: {{model: "{model}", dtype: float32, enforce_eager: true, gpu_memory_utilization: 0.3, max_model_len: 2048}}
questions:
  - id: car
    text: Do you own a car?
    options: [Yes, No]
"""


def test_a_scenario_runs_end_to_end_on_vllm(smollm2_hf, tmp_path):
    scenario = tmp_path / "vllm.yaml"
    scenario.write_text(SCENARIO.format(model=smollm2_hf))
    db = tmp_path / "simrun.db"
    result = subprocess.run(
        [sys.executable, "-m", "simrun", "run", str(scenario), "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    store = Store(db, read_only=True)
    [run] = store.runs.all()
    rows = [(r["model"], r["invalid"]) for r in store.answers.rows(run["id"])]
    assert len(rows) == 4 and {model for model, _ in rows} == {"smollm2-hf"} and all(invalid < 1 for _, invalid in rows)
