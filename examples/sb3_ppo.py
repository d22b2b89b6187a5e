"""Train stable-baselines3's PPO, unchanged, on CodeCompletion-v0 one character at a time.

    python examples/sb3_ppo.py --timesteps 4096

The :class:`~codegym.envs.wrappers.TokenLevel` wrapper gives PPO a ``Box`` of token ids and a
``Discrete`` action (one printable character, or end of text). Each episode is a toy task at
the curriculum's first stage: the canonical solution up to its last conditional is given, and
the agent writes the rest. A small MLP will not learn to program in a few thousand steps; the
point is that a classic RL library runs on codegym as is, with rewards from real executions.
It prints the mean episode reward at the start and at the end of training.
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import cast

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

import codegym  # noqa: F401  (registers the environments)
from codegym.envs.wrappers import TokenLevel
from codegym.sandbox import make_sandbox


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timesteps", type=int, default=4096, help="PPO timesteps (tokens)")
    parser.add_argument("--tasks", default="toy", help="task source for load_tasks")
    parser.add_argument("--num-tasks", type=int, default=32, help="tasks drawn from the source")
    parser.add_argument("--sandbox", default="auto", help="docker, process or auto")
    parser.add_argument("--n-envs", type=int, default=4, help="parallel envs")
    parser.add_argument("--max-new-tokens", type=int, default=24, help="tokens per completion")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    from codegym.tasks import load_tasks

    # A tiny MLP gains nothing from threads, and they would compete with the sandbox's workers.
    torch.set_num_threads(1)
    tasks = load_tasks(args.tasks, n=args.num_tasks, seed=args.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the process backend's warning
        sandbox = make_sandbox(args.sandbox)
    try:

        def make_env() -> gym.Env:
            env = gym.make(
                "codegym/CodeCompletion-v0",
                tasks=tasks,
                sandbox=sandbox,
                curriculum=0,  # every task at its first stage: the shortest completions
                trace_lines=False,
            )
            return TokenLevel(env, context_tokens=64, max_new_tokens=args.max_new_tokens)

        vec_env = make_vec_env(make_env, n_envs=args.n_envs, seed=args.seed)
        model = PPO(
            "MlpPolicy", vec_env, n_steps=256, batch_size=256, n_epochs=4, seed=args.seed, verbose=0
        )
        start = time.perf_counter()
        model.learn(total_timesteps=args.timesteps)
        elapsed = time.perf_counter() - start
        rewards = _episode_rewards(vec_env)
        tenth = max(1, len(rewards) // 10)
        print(f"trained {args.timesteps} timesteps in {elapsed:.1f} s, {len(rewards)} episodes")
        print(f"mean reward, first {tenth} episodes: {np.mean(rewards[:tenth]):+.3f}")
        print(f"mean reward, last {tenth} episodes:  {np.mean(rewards[-tenth:]):+.3f}")
        print(f"mean reward: {np.mean(rewards):+.3f}")
        vec_env.close()
    finally:
        sandbox.close()


def _episode_rewards(vec_env: VecEnv) -> list[float]:
    """Every finished episode's reward, in the order they ended, from the Monitor wrappers."""
    assert isinstance(vec_env, DummyVecEnv), "make_vec_env builds a DummyVecEnv by default"
    episodes: list[tuple[float, float]] = []
    for env in vec_env.envs:
        monitor = cast(Monitor, env)
        episodes += zip(monitor.get_episode_times(), monitor.get_episode_rewards(), strict=True)
    return [reward for _, reward in sorted(episodes)]


if __name__ == "__main__":
    main()
