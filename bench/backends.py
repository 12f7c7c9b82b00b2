"""Embedded backend throughput: persona x question scorings per second on this CPU.

"cold" scores prompts of different personas (nothing shared beyond the
instruction); "prefix reuse" scores several questions for one persona in a
row, so only each question's own tokens are evaluated. Prints one JSON line.

    python bench/backends.py [--personas 20] [--questions 5]
"""

from __future__ import annotations

import argparse
import json
import time

from simrun.models import Prompt
from simrun.plugins.simulators.embedded import EmbeddedSimulator

ATTRIBUTES = ["state", "age", "sex", "race ethnicity", "education", "household income", "census region", "occupation"]


def persona(i: int) -> str:
    return "You are role-playing as the person described below.\n\n" + "\n".join(
        f"{a}: value {i}-{j}" for j, a in enumerate(ATTRIBUTES)
    )


def prompt(i: int, q: int) -> Prompt:
    return Prompt(
        persona_id=i,
        question_id=f"q{q}",
        system=persona(i),
        labels=["A", "B", "C", "D"],
        user=f"Survey question number {q}: how much do you agree with statement {q}?\n\n"
        "A. Strongly agree\nB. Agree\nC. Disagree\nD. Strongly disagree\n\n"
        "Answer with the letter of one option only.",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--personas", type=int, default=20)
    parser.add_argument("--questions", type=int, default=5)
    args = parser.parse_args()
    sim = EmbeddedSimulator()
    sim.answer([prompt(-1, 0)])  # load the model outside the timings
    cold = [prompt(i, 0) for i in range(args.personas)]
    started = time.perf_counter()
    answers = sim.answer(cold)
    cold_rate = len(cold) / (time.perf_counter() - started)
    grouped = [prompt(1000 + i, q) for i in range(args.personas) for q in range(args.questions)]
    started = time.perf_counter()
    sim.answer(grouped)
    grouped_rate = len(grouped) / (time.perf_counter() - started)
    print(
        json.dumps(
            {
                "embedded_cold_scorings_per_s": round(cold_rate, 2),
                "embedded_prefix_reuse_scorings_per_s": round(grouped_rate, 2),
                "prompt_tokens": round(sum(a.tokens for a in answers) / len(answers)),
                "questions_per_persona": args.questions,
                "model": sim.model,
            }
        )
    )
    sim.close()


if __name__ == "__main__":
    main()
